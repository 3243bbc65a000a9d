import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage, type CopyEvent } from '../../oci/copy.js';
import { manifestDescriptor } from '../../oci/manifest.js';
import { openTarget } from '../../oci/transports.js';
import { startDistribution, type RunningDistribution } from '../support/distribution.js';
import { makeImageIndex, makeRandomImage, writeImageToTarget } from '../support/random-image.js';

let work: string;
let registry: RunningDistribution;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-copy-'));
  registry = await startDistribution();
});
afterAll(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

describe('copyImage', () => {
  it('copies blobs before manifests, skips blobs already present, and keeps the digest', async () => {
    const image = await makeRandomImage({ layers: 2 });
    const src = await openTarget(`oci:${join(work, 'a')}:1`, { mode: 'write' });
    await writeImageToTarget(src, image, '1');
    const dst = await openTarget(`${registry.host}/copy/a:1`, { mode: 'write' });
    const events: CopyEvent[] = [];
    const first = await copyImage({ source: src, destination: dst, onProgress: (e) => events.push(e) });
    expect(first).toMatchObject({ digest: image.manifest.digest, tag: '1', manifests: 1, blobs: { copied: 3, skipped: 0 } });
    const manifestAt = events.findIndex((e) => e.type === 'manifest');
    expect(events.filter((e, i) => e.type === 'blob-done' && i > manifestAt)).toEqual([]);
    const second = await copyImage({ source: src, destination: dst });
    expect(second.blobs).toMatchObject({ copied: 0, skipped: 3 });
    expect((await dst.resolve()).bytes).toEqual(image.manifest.bytes);
  });

  it('mounts blobs across repositories of one registry instead of uploading them', async () => {
    const from = await openTarget(`${registry.host}/copy/a:1`, { mode: 'read' });
    const to = await openTarget(`${registry.host}/copy/b:1`, { mode: 'write' });
    const result = await copyImage({ source: from, destination: to });
    expect(result.blobs).toMatchObject({ copied: 0, mounted: 3 });
  });

  it('brings referrers and cosign-style tags along only with withReferrers', async () => {
    const image = await makeRandomImage({ layers: 1 });
    const repo = `${registry.host}/copy/signed`;
    const reg = await openTarget(`${repo}:v1`, { mode: 'write' });
    await writeImageToTarget(reg, image, 'v1');
    const sbom = await makeRandomImage({ layers: 1, subject: manifestDescriptor(image.manifest), artifactType: 'application/spdx+json' });
    await writeImageToTarget(reg, sbom);
    const sig = await makeRandomImage({ layers: 1 });
    await writeImageToTarget(reg, sig, `${image.manifest.digest.replace(':', '-')}.sig`);

    const plain = await openTarget(`oci:${join(work, 'plain')}:v1`, { mode: 'write' });
    const p = await copyImage({ source: reg, destination: plain });
    expect(p.referrers).toBe(0);
    expect(await plain.referrers(image.manifest.digest)).toEqual([]);
    await plain.close();

    const full = await openTarget(`oci:${join(work, 'full')}:v1`, { mode: 'write' });
    const f = await copyImage({ source: reg, destination: full, withReferrers: true });
    expect(f.referrers).toBe(2);
    const referrers = await full.referrers(image.manifest.digest);
    expect(referrers.map((d) => d.digest)).toContain(sbom.manifest.digest);
    expect((await full.getManifest(`${image.manifest.digest.replace(':', '-')}.sig`)).digest).toBe(sig.manifest.digest);
    await full.close();
  });

  it('copies extraTags of the source repository after the image when present, skipping absent ones', async () => {
    const image = await makeRandomImage({ layers: 1 });
    const meta = await makeRandomImage({ layers: 1 });
    const src = await openTarget(`oci:${join(work, 'extra-src')}:v1`, { mode: 'write' });
    await writeImageToTarget(src, image, 'v1');
    await writeImageToTarget(src, meta, 'repo-metadata');
    const dst = await openTarget(`${registry.host}/copy/extra:v1`, { mode: 'write' });
    const events: CopyEvent[] = [];
    const result = await copyImage({ source: src, destination: dst, extraTags: ['repo-metadata', 'absent'], onProgress: (e) => events.push(e) });
    expect(result).toMatchObject({ digest: image.manifest.digest, tag: 'v1', manifests: 2, extraTags: ['repo-metadata'] });
    const tagged = events.flatMap((e) => (e.type === 'manifest' && e.tag !== undefined ? [e.tag] : []));
    expect(tagged).toEqual(['v1', 'repo-metadata']);
    expect((await dst.getManifest('repo-metadata')).digest).toBe(meta.manifest.digest);
    expect((await dst.tags()).sort()).toEqual(['repo-metadata', 'v1']);
    const plain = await openTarget(`oci:${join(work, 'extra-none')}:v1`, { mode: 'write' });
    const without = await copyImage({ source: src, destination: plain });
    expect(without.extraTags).toEqual([]);
    expect(await plain.tags()).toEqual(['v1']);
    await plain.close();
    await src.close();
  });

  it('copies one platform of an index with platform', async () => {
    const amd = await makeRandomImage({ layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeRandomImage({ layers: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = makeImageIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    const src = await openTarget(`oci:${join(work, 'idx')}:m`, { mode: 'write' });
    await writeImageToTarget(src, amd);
    await writeImageToTarget(src, arm);
    await src.putManifest(index, 'm');
    const dst = await openTarget(`oci:${join(work, 'one')}:m`, { mode: 'write' });
    const r = await copyImage({ source: src, destination: dst, platform: { os: 'linux', architecture: 'arm64' } });
    expect(r.digest).toBe(arm.manifest.digest);
    expect(await dst.statBlob(amd.layers[0]!.desc.digest)).toBeUndefined();
    await expect(copyImage({ source: src, destination: dst, platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({ code: 'PLATFORM_UNKNOWN' });
  });
  it('fails cleanly (SIZE_MISMATCH, nothing stored) when a source blob is longer than its descriptor, progress listener or not', async () => {
    for (const onProgress of [undefined, () => undefined]) {
      const image = await makeRandomImage({ layers: 1 });
      const dir = join(work, `long-${onProgress ? 'p' : 'q'}`);
      const src = await openTarget(`oci:${dir}:1`, { mode: 'write' });
      await writeImageToTarget(src, image, '1');
      await src.close();
      // The stored layer gains bytes its descriptor does not announce.
      const desc = (JSON.parse(image.manifest.bytes.toString()) as { layers: { digest: string }[] }).layers[0]!;
      await appendFile(join(dir, 'blobs', ...desc.digest.split(':')), Buffer.alloc(4096, 1));
      const source = await openTarget(`oci:${dir}:1`, { mode: 'read' });
      const destination = await openTarget(`oci:${join(work, `long-dst-${onProgress ? 'p' : 'q'}`)}:1`, { mode: 'write' });
      const err = await copyImage({ source, destination, onProgress }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('SIZE_MISMATCH');
      expect(await destination.statBlob(desc.digest as never)).toBeUndefined();
      await destination.close({ discard: true });
    }
  });
});
