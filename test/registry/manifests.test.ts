import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { MediaType } from '../../oci/media-types.js';
import { errorCode, imageManifest, pushBlob, putManifest, rawRequest, startTestRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
const admitted: string[] = [];
beforeAll(async () => {
  reg = await startTestRegistry({
    deps: {
      admit: async (manifest, repository, tag) => {
        if (tag === 'forbidden') throw new KilnError('DENIED', `policy refuses ${repository}:${tag}`);
        admitted.push(`${repository}:${tag ?? manifest.digest}`);
      },
    },
  });
});
afterAll(() => reg.stop({ removeDir: true }));

const get = (path: string, headers: Record<string, string> = {}): Promise<Response> => fetch(`${reg.url}${path}`, { headers });

describe('manifest push and pull', () => {
  it('stores byte-exact by tag and serves by tag and digest with Content-Type and Docker-Content-Digest', async () => {
    const m = await imageManifest(reg.url, 'man/app');
    const put = await putManifest(reg.url, 'man/app', 'v1', m.bytes);
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/man/app/manifests/${m.digest}`);
    expect(put.headers.get('docker-content-digest')).toBe(m.digest);
    expect(put.headers.get('oci-subject')).toBeNull();
    expect(admitted).toContain('man/app:v1');
    for (const ref of ['v1', m.digest]) {
      const res = await get(`/v2/man/app/manifests/${ref}`, { accept: MediaType.OciManifest });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(MediaType.OciManifest);
      expect(res.headers.get('docker-content-digest')).toBe(m.digest);
      expect(Buffer.from(await res.arrayBuffer())).toEqual(m.bytes);
      const head = await fetch(`${reg.url}/v2/man/app/manifests/${ref}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(m.bytes.length));
      expect(await head.text()).toBe('');
    }
    const etag = await get(`/v2/man/app/manifests/v1`, { 'if-none-match': `"${m.digest}"` });
    expect(etag.status).toBe(304);
  });

  it('takes Docker schema2 manifests, manifest lists and OCI indexes whose children exist', async () => {
    const docker = await imageManifest(reg.url, 'man/multi', { mediaType: MediaType.DockerManifest });
    expect((await putManifest(reg.url, 'man/multi', docker.digest, docker.bytes, MediaType.DockerManifest)).status).toBe(201);
    const oci = await imageManifest(reg.url, 'man/multi');
    expect((await putManifest(reg.url, 'man/multi', oci.digest, oci.bytes)).status).toBe(201);
    const list = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DockerManifestList,
      manifests: [{ mediaType: MediaType.DockerManifest, digest: docker.digest, size: docker.bytes.length, platform: { architecture: 'amd64', os: 'linux' } }],
    }));
    const putList = await putManifest(reg.url, 'man/multi', 'list', list, MediaType.DockerManifestList);
    expect(putList.status).toBe(201);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciManifest, digest: oci.digest, size: oci.bytes.length }] }));
    expect((await putManifest(reg.url, 'man/multi', 'index', index, MediaType.OciIndex)).status).toBe(201);
    const res = await get('/v2/man/multi/manifests/list', { accept: MediaType.DockerManifestList });
    expect(res.headers.get('content-type')).toBe(MediaType.DockerManifestList);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(list);
    const missingChild = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [{ mediaType: MediaType.OciManifest, digest: digestOf('no such manifest'), size: 10 }] }));
    const bad = await putManifest(reg.url, 'man/multi', 'broken', missingChild, MediaType.OciIndex);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('negotiates by Accept: a type the client excludes is 404 MANIFEST_UNKNOWN; absent or */* is served', async () => {
    const path = '/v2/man/app/manifests/v1';
    expect((await get(path, { accept: MediaType.DockerManifest })).status).toBe(404);
    expect(await errorCode(await get(path, { accept: MediaType.DockerManifest }))).toBe('MANIFEST_UNKNOWN');
    expect((await get(path, { accept: `${MediaType.OciManifest};q=0, ${MediaType.DockerManifest}` })).status).toBe(404);
    expect((await get(path)).status).toBe(200);
    expect((await get(path, { accept: '*/*' })).status).toBe(200);
    expect((await get(path, { accept: 'application/*' })).status).toBe(200);
    expect((await get(path, { accept: `${MediaType.DockerManifest}, ${MediaType.OciManifest};q=0.5` })).status).toBe(200);
  });

  it('moves tags atomically and serves the new target at once (cache invalidated)', async () => {
    const a = await imageManifest(reg.url, 'man/move');
    const b = await imageManifest(reg.url, 'man/move');
    await putManifest(reg.url, 'man/move', 'latest', a.bytes);
    expect((await get('/v2/man/move/manifests/latest')).headers.get('docker-content-digest')).toBe(a.digest);
    await putManifest(reg.url, 'man/move', 'latest', b.bytes);
    expect((await get('/v2/man/move/manifests/latest')).headers.get('docker-content-digest')).toBe(b.digest);
  });

  it('verifies the digest of a push by digest, sha256 and sha512', async () => {
    const m = await imageManifest(reg.url, 'man/bydigest');
    const wrong = await putManifest(reg.url, 'man/bydigest', digestOf('other'), m.bytes);
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    expect((await get(`/v2/man/bydigest/manifests/${digestOf('other')}`)).status).toBe(404);
    const d512 = digestOf(m.bytes, 'sha512');
    const put512 = await putManifest(reg.url, 'man/bydigest', d512, m.bytes);
    expect(put512.status).toBe(201);
    expect(put512.headers.get('docker-content-digest')).toBe(d512);
    expect(Buffer.from(await (await get(`/v2/man/bydigest/manifests/${d512}`)).arrayBuffer())).toEqual(m.bytes);
  });

  it('accepts an unknown subject and answers OCI-Subject', async () => {
    const subject = { mediaType: MediaType.OciManifest, digest: digestOf('not pushed yet'), size: 123 };
    const m = await imageManifest(reg.url, 'man/subject', { subject, artifactType: 'application/vnd.example.sig' });
    const put = await putManifest(reg.url, 'man/subject', m.digest, m.bytes);
    expect(put.status).toBe(201);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
  });

  it('refuses a manifest the admission hook denies with 403 DENIED and stores nothing', async () => {
    const m = await imageManifest(reg.url, 'man/policy');
    const put = await putManifest(reg.url, 'man/policy', 'forbidden', m.bytes);
    expect(put.status).toBe(403);
    expect(await errorCode(put)).toBe('DENIED');
    expect((await get(`/v2/man/policy/manifests/${m.digest}`)).status).toBe(404);
  });
});

describe('bad manifests', () => {
  async function expectRefused(body: Buffer | string, code: string, status = 400, contentType: string = MediaType.OciManifest): Promise<string> {
    const bytes = Buffer.from(body);
    const res = await putManifest(reg.url, 'man/bad', 'bad', bytes, contentType);
    expect(res.status).toBe(status);
    const text = await res.text();
    expect(JSON.parse(text).errors[0].code).toBe(code);
    expect((await get(`/v2/man/bad/manifests/${digestOf(bytes)}`)).status).toBe(404);
    return text;
  }

  it('refuses malformed JSON, unknown schemaVersion, missing fields and a Content-Type the document contradicts', async () => {
    const config = await pushBlob(reg.url, 'man/bad', '{}');
    const good = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config, size: 2 }, layers: [] };
    await expectRefused('not json {', 'MANIFEST_INVALID');
    expect(await expectRefused(JSON.stringify({ ...good, schemaVersion: 3 }), 'MANIFEST_INVALID')).toContain('schemaVersion');
    expect(await expectRefused(JSON.stringify({ ...good, schemaVersion: 1 }), 'MANIFEST_INVALID')).toContain('schemaVersion');
    expect(await expectRefused(JSON.stringify({ ...good, config: undefined }), 'MANIFEST_INVALID')).toContain('config');
    expect(await expectRefused(JSON.stringify({ ...good, layers: [{ mediaType: 'x', digest: 'sha256:zz', size: 1 }] }), 'MANIFEST_INVALID')).toContain('layers[0]');
    await expectRefused(JSON.stringify(good), 'MANIFEST_INVALID', 400, MediaType.DockerManifest);
    await expectRefused('[]', 'MANIFEST_INVALID');
  });

  it('refuses references to unknown blobs with MANIFEST_BLOB_UNKNOWN naming them', async () => {
    const config = await pushBlob(reg.url, 'man/bad', '{"a":1}');
    const missing = digestOf('missing layer');
    const doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: { mediaType: MediaType.OciConfig, digest: config, size: 7 }, layers: [{ mediaType: MediaType.OciLayerGzip, digest: missing, size: 5 }] };
    const text = await expectRefused(JSON.stringify(doc), 'MANIFEST_BLOB_UNKNOWN');
    expect(JSON.parse(text).errors[0].detail.digests).toEqual([missing]);
    const other = await pushBlob(reg.url, 'man/elsewhere', 'missing layer');
    expect(other).toBe(missing);
    await expectRefused(JSON.stringify(doc), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('answers 413 over 4 MiB, by Content-Length or by streamed size', async () => {
    const huge = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    await expectRefused(huge, 'SIZE_INVALID', 413);
    const chunks = async function* (): AsyncGenerator<Buffer> {
      for (let i = 0; i < 5; i++) yield Buffer.alloc(1024 * 1024, 0x20);
    };
    const res = await fetch(`${reg.url}/v2/man/bad/manifests/streamed`, { method: 'PUT', headers: { 'content-type': MediaType.OciManifest }, body: Readable.toWeb(Readable.from(chunks())), duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
  });

  it('refuses invalid tags on PUT (400) and treats them as unknown on GET/DELETE (404); malformed digests are 400', async () => {
    const m = await imageManifest(reg.url, 'man/tags');
    const put = await putManifest(reg.url, 'man/tags', '.INVALID_MANIFEST_NAME', m.bytes);
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('MANIFEST_INVALID');
    expect((await putManifest(reg.url, 'man/tags', 'x'.repeat(129), m.bytes)).status).toBe(400);
    expect((await get('/v2/man/tags/manifests/.INVALID_MANIFEST_NAME')).status).toBe(404);
    expect((await fetch(`${reg.url}/v2/man/tags/manifests/.INVALID_MANIFEST_NAME`, { method: 'HEAD' })).status).toBe(404);
    const wrong = await get('/v2/man/tags/manifests/sha256:totallywrong');
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    const traversal = await rawRequest(reg.url, 'PUT', '/v2/man/tags/manifests/..');
    expect(traversal.status).toBe(400);
  });
});

describe('manifest delete', () => {
  it('DELETE by tag untags (202) and keeps the manifest by digest', async () => {
    const m = await imageManifest(reg.url, 'man/del');
    await putManifest(reg.url, 'man/del', 'one', m.bytes);
    await putManifest(reg.url, 'man/del', 'two', m.bytes);
    expect((await fetch(`${reg.url}/v2/man/del/manifests/one`, { method: 'DELETE' })).status).toBe(202);
    expect((await get('/v2/man/del/manifests/one')).status).toBe(404);
    expect((await get(`/v2/man/del/manifests/${m.digest}`)).status).toBe(200);
    expect((await get('/v2/man/del/manifests/two')).status).toBe(200);
    const again = await fetch(`${reg.url}/v2/man/del/manifests/one`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe('MANIFEST_UNKNOWN');
  });

  it('DELETE by digest removes the manifest and its tags (202), then 404', async () => {
    const m = await imageManifest(reg.url, 'man/del');
    await putManifest(reg.url, 'man/del', 'three', m.bytes);
    expect((await get('/v2/man/del/manifests/three')).status).toBe(200);
    expect((await fetch(`${reg.url}/v2/man/del/manifests/${m.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await get(`/v2/man/del/manifests/${m.digest}`)).status).toBe(404);
    expect((await get('/v2/man/del/manifests/three')).status).toBe(404);
    const tags = (await (await get('/v2/man/del/tags/list')).json()) as { tags: string[] };
    expect(tags.tags).not.toContain('three');
    const unknownRepo = await fetch(`${reg.url}/v2/man/nowhere/manifests/${m.digest}`, { method: 'DELETE' });
    expect(unknownRepo.status).toBe(404);
    expect(await errorCode(unknownRepo)).toBe('NAME_UNKNOWN');
  });

  it('GET in an unknown repository is 404 MANIFEST_UNKNOWN', async () => {
    const res = await get('/v2/man/nowhere/manifests/latest');
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('MANIFEST_UNKNOWN');
  });
});
