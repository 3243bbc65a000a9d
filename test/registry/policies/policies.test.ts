import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../oci/digest.js';
import { type SecureRegistry, startSecureRegistry } from '../auth/helpers.js';
import { imageManifest, pushBlob, putManifest } from '../helpers.js';

// Immutable tags and quotas on a real server (startServer with a `policies` section, no auth on loopback).

let registry: SecureRegistry;
beforeAll(async () => {
  registry = await startSecureRegistry({
    yaml: `policies:
  - repository: "release/**"
    immutableTags: true
  - repository: "small/*"
    quota: 4kB
  - repository: "tiny/*"
    immutableTags: true
    quota: 1KiB
`,
  });
});
afterAll(() => registry?.close());

async function refusal(res: Response): Promise<{ code: string; message: string; detail?: Record<string, unknown> }> {
  const body = (await res.json()) as { errors: Array<{ code: string; message: string; detail?: Record<string, unknown> }> };
  return body.errors[0] ?? { code: '', message: '' };
}

/** Pushes a blob through a session: POST, one PATCH, closing PUT (the chunked path's completion). */
async function chunkedUpload(name: string, data: Buffer): Promise<Response> {
  const start = await fetch(`${registry.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  const location = start.headers.get('location') ?? '';
  const patch = await fetch(`${registry.url}${location}`, { method: 'PATCH', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
  expect(patch.status).toBe(202);
  return fetch(`${registry.url}${patch.headers.get('location') ?? ''}?digest=${digestOf(data)}`, { method: 'PUT' });
}

describe('immutable tags', () => {
  it('refuses moving or deleting an existing tag, naming the policy; re-pushing the same manifest is fine', async () => {
    const one = await imageManifest(registry.url, 'release/app', { seed: 'one' });
    const two = await imageManifest(registry.url, 'release/app', { seed: 'two' });
    expect((await putManifest(registry.url, 'release/app', '1.0', one.bytes)).status).toBe(201);
    expect((await putManifest(registry.url, 'release/app', '1.0', one.bytes)).status).toBe(201);
    const moved = await putManifest(registry.url, 'release/app', '1.0', two.bytes);
    expect(moved.status).toBe(403);
    const error = await refusal(moved);
    expect(error.code).toBe('DENIED');
    expect(error.message).toBe(`release/app has immutable tags (policy release/**): tag 1.0 already points to ${one.digest} and may not be moved`);
    expect(await (await fetch(`${registry.url}/v2/release/app/manifests/1.0`)).text()).toBe(one.bytes.toString());

    const untag = await fetch(`${registry.url}/v2/release/app/manifests/1.0`, { method: 'DELETE' });
    expect(untag.status).toBe(403);
    expect((await refusal(untag)).message).toContain('tag 1.0 may not be deleted');
    const byDigest = await fetch(`${registry.url}/v2/release/app/manifests/${one.digest}`, { method: 'DELETE' });
    expect(byDigest.status).toBe(403);
    expect((await refusal(byDigest)).message).toContain(`manifest ${one.digest} is tagged 1.0`);

    // New tags, untagged manifests and other repositories are not affected.
    expect((await putManifest(registry.url, 'release/app', '1.1', two.bytes)).status).toBe(201);
    const loose = await imageManifest(registry.url, 'release/app', { seed: 'loose' });
    expect((await putManifest(registry.url, 'release/app', loose.digest, loose.bytes)).status).toBe(201);
    expect((await fetch(`${registry.url}/v2/release/app/manifests/${loose.digest}`, { method: 'DELETE' })).status).toBe(202);
    const dev1 = await imageManifest(registry.url, 'dev/app', { seed: 'dev 1' });
    const dev2 = await imageManifest(registry.url, 'dev/app', { seed: 'dev 2' });
    expect((await putManifest(registry.url, 'dev/app', '1.0', dev1.bytes)).status).toBe(201);
    expect((await putManifest(registry.url, 'dev/app', '1.0', dev2.bytes)).status).toBe(201);
  });

  it('exempts sha256-… referrer and signature tags, and the signed tag state (kiln-tag-state)', async () => {
    const subject = await imageManifest(registry.url, 'release/signed', { seed: 'subject' });
    const a = await imageManifest(registry.url, 'release/signed', { seed: 'sig a' });
    const b = await imageManifest(registry.url, 'release/signed', { seed: 'sig b' });
    const hex = subject.digest.slice('sha256:'.length);
    for (const tag of [`sha256-${hex}.sig`, `sha256-${hex}`, 'kiln-tag-state']) {
      expect((await putManifest(registry.url, 'release/signed', tag, a.bytes)).status).toBe(201);
      expect((await putManifest(registry.url, 'release/signed', tag, b.bytes)).status).toBe(201);
      expect((await fetch(`${registry.url}/v2/release/signed/manifests/${tag}`, { method: 'DELETE' })).status).toBe(202);
    }
  });
});

describe('quotas', () => {
  it('refuses a blob push that would exceed the quota, naming quota and usage; known blobs cost nothing', async () => {
    const first = randomBytes(3000);
    await pushBlob(registry.url, 'small/app', first);
    const second = randomBytes(1500);
    const res = await fetch(`${registry.url}/v2/small/app/blobs/uploads/?digest=${digestOf(second)}`, { method: 'POST', body: new Uint8Array(second) });
    expect(res.status).toBe(403);
    const error = await refusal(res);
    expect(error.code).toBe('DENIED');
    expect(error.message).toBe('repository small/app is limited to 4kB by quota policy small/*: it holds 3.0 kB and this blob of 1.5 kB would exceed it');
    expect(error.detail).toEqual({ policy: 'small/*', quota: 4000, usage: 3000, adding: 1500 });
    expect((await fetch(`${registry.url}/v2/small/app/blobs/${digestOf(second)}`)).status).toBe(404);
    // The same bytes again are deduplicated: counted once, so accepted.
    expect(await pushBlob(registry.url, 'small/app', first)).toBe(digestOf(first));
    // Chunked uploads are refused at completion too, and their session discarded.
    const chunked = await chunkedUpload('small/app', second);
    expect(chunked.status).toBe(403);
    expect((await refusal(chunked)).code).toBe('DENIED');
    // Each repository has its own quota.
    await pushBlob(registry.url, 'small/other', second);
  });

  it('refuses a cross-repository mount and a manifest over the quota', async () => {
    const big = randomBytes(900);
    const digest = await pushBlob(registry.url, 'free/source', big);
    await pushBlob(registry.url, 'small/mounted', randomBytes(3500));
    const mount = await fetch(`${registry.url}/v2/small/mounted/blobs/uploads/?mount=${digest}&from=free/source`, { method: 'POST' });
    expect(mount.status).toBe(403);
    expect((await refusal(mount)).message).toMatch(/^repository small\/mounted is limited to 4kB .* holds 3.5 kB and this blob of 900 B/);

    const image = await imageManifest(registry.url, 'tiny/app', { seed: 'x'.repeat(10) });
    const padded = Buffer.from(JSON.stringify({ ...JSON.parse(image.bytes.toString()), annotations: { pad: 'p'.repeat(1200) } }));
    const manifest = await putManifest(registry.url, 'tiny/app', 'v1', padded);
    expect(manifest.status).toBe(403);
    expect((await refusal(manifest)).message).toMatch(/^repository tiny\/app is limited to 1KiB by quota policy tiny\/\*: it holds \d+ B and this manifest of 1.\d kB would exceed it$/);
    expect((await putManifest(registry.url, 'tiny/app', 'v1', image.bytes)).status).toBe(201);
  });
});
