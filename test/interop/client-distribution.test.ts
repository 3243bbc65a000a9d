import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, type RegistryClientOptions } from '../../oci/client/registry-client.js';
import { openRegistryTarget } from '../../oci/client/registry-target.js';
import { referrersTag } from '../../oci/client/referrers.js';
import type { RequestEvent } from '../../oci/client/transport.js';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestHex, digestOf, type Digest } from '../../oci/digest.js';
import { isKilnError, type KilnError } from '../../oci/errors.js';
import { parseManifest, type RawManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { parseReference } from '../../oci/reference.js';
import { startDistribution, type RunningDistribution } from '../support/distribution.js';

const USER = 'kiln-user';
const PASSWORD = 'correct horse battery staple';

let registry: RunningDistribution;
let home: string;
let events: RequestEvent[] = [];

function client(overrides: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({
    registry: registry.host,
    credentials: { username: USER, password: PASSWORD },
    // An empty HOME: the developer's own docker config must not influence the tests.
    env: { HOME: home },
    retryBaseMs: 10,
    onRequest: (e) => events.push(e),
    ...overrides,
  });
}

function blob(data: Uint8Array, mediaType: string = MediaType.OciLayer): Descriptor {
  return { mediaType, digest: digestOf(data), size: data.length };
}

function manifest(config: Descriptor, layers: Descriptor[], extra: Record<string, unknown> = {}): RawManifest {
  const doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers, ...extra };
  return parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OciManifest);
}

async function drain(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

async function failure(promise: Promise<unknown>): Promise<KilnError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!isKilnError(err)) throw new Error(`expected a KilnError, got ${String(err)}`);
  return err;
}

/** Pushes a config and one layer to `repo`; returns the manifest (not yet pushed). */
async function pushImage(c: RegistryClient, repo: string, label: string): Promise<RawManifest> {
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, label }));
  const config = blob(configBytes, MediaType.OciConfig);
  const layerBytes = randomBytes(2048);
  const layer = blob(layerBytes);
  await c.uploadBlob(repo, config, configBytes);
  await c.uploadBlob(repo, layer, layerBytes);
  return manifest(config, [layer]);
}

beforeAll(async () => {
  registry = await startDistribution({ htpasswd: { user: USER, password: PASSWORD } });
  home = await mkdtemp(join(tmpdir(), 'kiln-client-home-'));
});

afterAll(async () => {
  await registry?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

describe('registry client against CNCF Distribution (htpasswd auth)', () => {
  it('pings with credentials', async () => {
    await expect(client().ping()).resolves.toBeUndefined();
  });

  it('pushes blobs monolithically and in chunks, and reads them back', async () => {
    const c = client();
    const mono = randomBytes(10_000);
    events = [];
    expect(await c.uploadBlob('blobs', blob(mono), () => Readable.from([mono.subarray(0, 4000), mono.subarray(4000)]))).toBe('uploaded');
    expect(events.filter((e) => e.method === 'PUT' && e.status === 201)).toHaveLength(1);

    const chunked = randomBytes(5_000);
    events = [];
    expect(await c.uploadBlob('blobs', blob(chunked), Readable.from([chunked]), { chunkSize: 1_000 })).toBe('uploaded');
    expect(events.filter((e) => e.method === 'PATCH' && e.status === 202)).toHaveLength(5);

    expect(await c.headBlob('blobs', digestOf(mono))).toBe(10_000);
    expect(await c.headBlob('blobs', digestOf(chunked))).toBe(5_000);
    expect(await c.headBlob('blobs', digestOf(randomBytes(8)))).toBeUndefined();
    expect((await drain(await c.getBlob('blobs', blob(mono)))).equals(mono)).toBe(true);
    expect((await drain(await c.getBlob('blobs', blob(chunked)))).equals(chunked)).toBe(true);
    const part = await drain(await c.getBlob('blobs', blob(mono), { range: { start: 100, end: 199 } }));
    expect(part.equals(mono.subarray(100, 200))).toBe(true);
  });

  it('does not re-send a blob the repository has', async () => {
    const c = client();
    const data = randomBytes(3_000);
    expect(await c.uploadBlob('dedup', blob(data), data)).toBe('uploaded');
    events = [];
    const source = Readable.from([data]);
    expect(await c.uploadBlob('dedup', blob(data), source)).toBe('exists');
    expect(events.map((e) => e.method)).toEqual(['HEAD']);
    expect(source.destroyed).toBe(true);
  });

  it('pushes a manifest and gets the same bytes by tag and by digest, HEAD agreeing', async () => {
    const c = client();
    const m = await pushImage(c, 'app', 'one');
    const put = await c.putManifest('app', '1', m);
    expect(put.digest).toBe(m.digest);
    const byTag = await c.getManifest('app', '1');
    const byDigest = await c.getManifest('app', m.digest);
    expect(byTag.bytes.equals(m.bytes)).toBe(true);
    expect(byDigest.bytes.equals(m.bytes)).toBe(true);
    expect(byDigest.digest).toBe(m.digest);
    expect(byTag.kind).toBe('manifest');
    expect(await c.headManifest('app', '1')).toEqual({ mediaType: MediaType.OciManifest, digest: m.digest, size: m.bytes.length });
    expect(await c.headManifest('app', 'nope')).toBeUndefined();
    const missing = await failure(c.getManifest('app', 'nope'));
    expect(missing.code).toBe('MANIFEST_UNKNOWN');
    expect(missing.message).toBe(`registry ${registry.host} refused manifest app:nope: MANIFEST_UNKNOWN: manifest unknown`);
  });

  it('reports a manifest the registry refuses with its Distribution code', async () => {
    const c = client();
    const absent = blob(randomBytes(100));
    const m = manifest(blob(Buffer.from('{}'), MediaType.OciConfig), [absent]);
    const err = await failure(c.putManifest('app', 'broken', m));
    expect(err.code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(err.message).toMatch(new RegExp(`^registry ${registry.host} refused manifest app:broken: MANIFEST_BLOB_UNKNOWN: `));
  });

  it('lists tags across pages and the catalog with Link pagination', async () => {
    const c = client();
    const m = await pushImage(c, 'paged', 'x');
    const tags = ['t1', 't2', 't3', 't4', 't5'];
    for (const tag of tags) await c.putManifest('paged', tag, m);
    events = [];
    expect((await c.listTags('paged', { pageSize: 2 })).sort()).toEqual(tags);
    // CNCF Distribution 2.8 ignores `n` on tags/list (pagination arrived in 3.0): the catalog paginates.
    for (const repo of ['cat-a', 'cat-b', 'cat-c', 'cat-d', 'cat-e']) await c.putManifest(repo, 'v', await pushImage(c, repo, repo));
    events = [];
    const all = await c.catalog({ pageSize: 2 });
    expect(all).toEqual(expect.arrayContaining(['cat-a', 'cat-b', 'cat-c', 'cat-d', 'cat-e', 'paged', 'app']));
    expect(new Set(all).size).toBe(all.length);
    expect(events.filter((e) => e.url.includes('/v2/_catalog')).length).toBeGreaterThanOrEqual(Math.ceil(all.length / 2));
  });

  it('mounts a blob across repositories of the same registry', async () => {
    const c = client();
    const data = randomBytes(4_000);
    await c.uploadBlob('mount-src', blob(data), data);
    events = [];
    expect(await c.uploadBlob('mount-dst', blob(data), () => Readable.from([data]), { mountFrom: 'mount-src' })).toBe('mounted');
    expect(events.some((e) => e.method === 'PUT' || e.method === 'PATCH')).toBe(false);
    expect(await c.headBlob('mount-dst', digestOf(data))).toBe(4_000);
    expect(await c.mountBlob('mount-dst2', blob(data), 'mount-src')).toBe(true);
    // Not in the source: the registry opens a plain upload (202), which continues as one.
    const other = randomBytes(1_000);
    expect(await c.mountBlob('mount-dst3', blob(other), 'mount-src')).toBe(false);
    expect(await c.uploadBlob('mount-dst3', blob(other), other, { mountFrom: 'mount-src' })).toBe('uploaded');
    expect(await c.headBlob('mount-dst3', digestOf(other))).toBe(1_000);
  });

  it('records referrers under the tag schema when the registry has no referrers API', async () => {
    const target = await openRegistryTarget(parseReference(`${registry.host}/signed:1`), { client: client() });
    const c = target.client;
    const subject = await pushImage(c, 'signed', 'subject');
    await target.putManifest(subject, '1');
    const empty = Buffer.from('{}');
    await c.uploadBlob('signed', blob(empty, MediaType.OciEmpty), empty);
    const subjectDesc: Descriptor = { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length };
    const artifact = (type: string, note: string): RawManifest =>
      manifest(blob(empty, MediaType.OciEmpty), [blob(empty, MediaType.OciEmpty)], { artifactType: type, subject: subjectDesc, annotations: { note } });
    const sig = artifact('application/vnd.example.sig', 'a');
    const sbom = artifact('application/vnd.example.sbom', 'b');
    await target.putManifest(sig);
    await target.putManifest(sbom);
    await target.putManifest(sig); // Again: must not be listed twice.

    const fallback = await c.getManifest('signed', referrersTag(subject.digest));
    expect(referrersTag(subject.digest)).toBe(`sha256-${digestHex(subject.digest)}`);
    expect(fallback.kind).toBe('index');
    const all = await target.referrers(subject.digest);
    expect(all.map((d) => d.digest)).toEqual([sig.digest, sbom.digest]);
    expect(all[0]).toEqual({ mediaType: MediaType.OciManifest, digest: sig.digest, size: sig.bytes.length, artifactType: 'application/vnd.example.sig', annotations: { note: 'a' } });
    expect(await target.referrers(subject.digest, { artifactType: 'application/vnd.example.sbom' })).toEqual([all[1]]);
    expect(await target.referrers(digestOf('no such subject'))).toEqual([]);
  });

  it('works as a Target: resolve, tags, stat, get and put blobs', async () => {
    const c = client();
    const m = await pushImage(c, 'target', 'tgt');
    await c.putManifest('target', 'v1', m);
    const target = await openRegistryTarget(parseReference(`${registry.host}/target:v1`), { credentials: { username: USER, password: PASSWORD }, env: { HOME: home } });
    expect(target.description).toBe(`${registry.host}/target:v1`);
    const resolved = await target.resolve();
    expect(resolved.digest).toBe(m.digest);
    expect(await target.tags()).toEqual(['v1']);
    if (resolved.kind !== 'manifest') throw new Error('expected an image manifest');
    const layer = resolved.parsed.layers[0] as Descriptor;
    expect(await target.statBlob(layer.digest)).toBe(layer.size);
    const bytes = await drain(await target.getBlob(layer));
    const copy = await openRegistryTarget(parseReference(`${registry.host}/target-copy:v1`), { client: target.client, chunkSize: 512 });
    await copy.putBlob(layer, Readable.from([bytes]));
    expect(await copy.mountBlob?.(resolved.parsed.config, 'target')).toBe(true);
    await copy.putManifest(resolved, 'v1');
    expect((await copy.resolve()).bytes.equals(m.bytes)).toBe(true);
    await copy.close();
  });

  it('deletes a manifest by digest', async () => {
    const c = client();
    const m = await pushImage(c, 'deleting', 'gone');
    await c.putManifest('deleting', 'v', m);
    await c.deleteManifest('deleting', m.digest);
    expect(await c.headManifest('deleting', m.digest)).toBeUndefined();
    expect((await failure(c.getManifest('deleting', 'v'))).code).toBe('MANIFEST_UNKNOWN');
    expect((await failure(c.deleteManifest('deleting', m.digest))).code).toBe('MANIFEST_UNKNOWN');
  });

  it('fails a wrong password with one clear AUTH_FAILED line', async () => {
    const err = await failure(client({ credentials: { username: USER, password: 'wrong' } }).listTags('app'));
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toBe(`registry ${registry.host} rejected the credentials of user ${USER}`);
    expect(err.message).not.toContain('wrong');
    expect((await failure(client({ credentials: { username: USER, password: 'wrong' } }).ping())).code).toBe('AUTH_FAILED');
  });

  it('names the credentials file when its entry is rejected', async () => {
    const authfile = join(home, 'auth.json');
    await writeFile(authfile, JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:stale`).toString('base64') } } }));
    const c = new RegistryClient({ registry: registry.host, authfile, env: { HOME: home } });
    const err = await failure(c.getManifest('app', '1'));
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toBe(`registry ${registry.host} rejected the credentials of user ${USER} (from ${authfile})`);
    await rm(authfile);
  });

  it('asks for a login when there are no credentials', async () => {
    const anonymous = new RegistryClient({ registry: registry.host, env: { HOME: home } });
    const err = await failure(anonymous.getManifest('app', '1'));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe(`authentication required for ${registry.host}/app: run kiln login ${registry.host}`);
    expect((await failure(anonymous.ping())).message).toBe(`authentication required for ${registry.host}: run kiln login ${registry.host}`);
  });

  it('lets the registry reject a blob whose bytes do not match its digest', async () => {
    const c = client();
    const claimed = blob(randomBytes(2_000));
    const actual = randomBytes(2_000);
    const err = await failure(c.uploadBlob('corrupt', claimed, () => Readable.from([actual])));
    expect(err.code).toBe('DIGEST_INVALID');
    expect(err.message).toMatch(new RegExp(`^registry ${registry.host} refused blob ${claimed.digest} of corrupt: DIGEST_INVALID`));
    expect(await c.headBlob('corrupt', claimed.digest)).toBeUndefined();
    const chunkedErr = await failure(c.uploadBlob('corrupt', claimed, actual, { chunkSize: 700 }));
    expect(chunkedErr.code).toBe('DIGEST_INVALID');
    const short = await failure(c.uploadBlob('corrupt', claimed, Readable.from([actual.subarray(0, 1_000)])));
    expect(short.code).toBe('SIZE_MISMATCH');
    expect(await c.headBlob('corrupt', claimed.digest)).toBeUndefined();
  });

  it('fails a streamed GET whose bytes do not match the digest', async () => {
    const c = client();
    const data = randomBytes(50_000);
    const desc = blob(data);
    await c.uploadBlob('tampered', desc, data);
    // Flip one byte in the registry's storage: Distribution serves blobs without re-checking them.
    const hex = digestHex(desc.digest as Digest);
    const file = join(registry.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    const stored = await readFile(file);
    stored[25_000] = (stored[25_000] ?? 0) ^ 0xff;
    await writeFile(file, stored);
    const err = await failure(drain(await c.getBlob('tampered', desc)));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toContain(desc.digest);
    const wrongSize = await failure(c.getBlob('tampered', { ...desc, size: desc.size + 1 }));
    expect(wrongSize.code).toBe('SIZE_MISMATCH');
  });
});
