import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Digest, digestHex, digestOf } from '../../../oci/digest.js';
import { MediaType } from '../../../oci/media-types.js';
import { collectGarbage, type GcReport } from '../../../registry/gc/collect.js';
import { pushBlob, putManifest, startTestRegistry, type TestRegistry } from '../helpers.js';
import { blobStatus, expectConsistent, manifestStatus, pushImage, pushIndex, type Pushed, tick } from './helpers.js';

let reg: TestRegistry;
beforeEach(async () => {
  // No manifest cache: these tests look at what the database says right after a collection.
  reg = await startTestRegistry({ deps: { manifestCache: false } });
});
afterEach(() => reg.stop({ removeDir: true }));

const gc = (options: { gracePeriodMs?: number; dryRun?: boolean; retention?: Parameters<typeof collectGarbage>[0]['retention'] } = {}): Promise<GcReport> =>
  collectGarbage({ metadata: reg.metadata, blobs: reg.blobs, gracePeriodMs: options.gracePeriodMs ?? 0, dryRun: options.dryRun, retention: options.retention });

/** An image whose layer is `layer` (already in the repository) and whose config is new. */
async function imageWithLayer(name: string, layer: Digest, layerSize: number, reference?: string): Promise<Pushed> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', n: Math.random(), rootfs: { type: 'layers', diff_ids: [] } }));
  const configDigest = await pushBlob(reg.url, name, config);
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: layer, size: layerSize }],
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = digestOf(bytes);
  expect((await putManifest(reg.url, name, reference ?? digest, bytes)).status).toBe(201);
  return { digest, bytes, mediaType: MediaType.OciManifest, size: bytes.length, blobs: [configDigest, layer] };
}

const subjectOf = (p: Pushed) => ({ mediaType: p.mediaType, digest: p.digest, size: p.size });
const sigTag = (p: Pushed) => `sha256-${digestHex(p.digest)}.sig`;

describe('collectGarbage: mark and sweep', () => {
  it('keeps tagged images, index children, referrers and signatures of live images; sweeps the rest', async () => {
    const name = 'app';
    const tagged = await pushImage(reg.url, name, 'v1');
    const child1 = await pushImage(reg.url, name);
    const child2 = await pushImage(reg.url, name);
    const index = await pushIndex(reg.url, name, 'multi', [child1, child2]);
    const sbom = await pushImage(reg.url, name, undefined, { subject: subjectOf(tagged), artifactType: 'application/spdx+json' });
    const sbomSig = await pushImage(reg.url, name, undefined, { subject: subjectOf(sbom), artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
    const signature = await pushImage(reg.url, name, sigTag(tagged));

    // Garbage: an untagged image sharing its layer with the tagged one, its referrer, its cosign signature, a loose blob.
    const sharedLayer = tagged.blobs[1] as Digest;
    const untagged = await imageWithLayer(name, sharedLayer, (await reg.blobs.stat(sharedLayer))?.size ?? 0);
    const orphanReferrer = await pushImage(reg.url, name, undefined, { subject: subjectOf(untagged), artifactType: 'application/spdx+json' });
    const orphanSignature = await pushImage(reg.url, name, sigTag(untagged));
    const loose = await pushBlob(reg.url, name, 'never referenced');
    await tick();

    const report = await gc();
    const dead = [untagged, orphanReferrer, orphanSignature];
    expect(report.manifests.map((m) => m.digest).sort()).toEqual(dead.map((m) => m.digest).sort());
    expect(report.tags).toEqual([{ repository: name, tag: sigTag(untagged) }]);
    const deadBlobs = [untagged.blobs[0], ...orphanReferrer.blobs, ...orphanSignature.blobs, loose] as Digest[];
    expect(report.blobs.map((b) => b.digest).sort()).toEqual([...deadBlobs].sort());
    expect(report.bytesFreed).toBe(report.blobs.reduce((n, b) => n + b.size, 0));
    expect(report.bytesFreed).toBeGreaterThan(0);
    for (const d of deadBlobs) expect(await reg.blobs.stat(d)).toBeUndefined();

    for (const live of [tagged, child1, child2, index, sbom, sbomSig, signature]) {
      expect(await manifestStatus(reg.url, name, live.digest)).toBe(200);
      for (const b of live.blobs) expect(await blobStatus(reg.url, name, b)).toBe(200);
    }
    for (const gone of dead) expect(await manifestStatus(reg.url, name, gone.digest)).toBe(404);
    expect(await manifestStatus(reg.url, name, sigTag(tagged))).toBe(200);
    expect(await expectConsistent(reg.url, reg.metadata, reg.blobs)).toBe(7);

    // Nothing is left to collect: a second run is a no-op.
    const again = await gc();
    expect([again.tags, again.manifests, again.links, again.blobs]).toEqual([[], [], [], []]);
  });

  it('keeps a signature stored apart from its image, and a blob another repository still uses', async () => {
    const image = await pushImage(reg.url, 'images/app', 'v1');
    const signature = await pushImage(reg.url, 'signatures/app', sigTag(image));
    // The same bytes linked, unreferenced, in a second repository: the link goes, the file stays.
    const shared = image.blobs[1] as Digest;
    const res = await fetch(`${reg.url}/v2/other/blobs/uploads/?mount=${shared}&from=images/app`, { method: 'POST' });
    expect(res.status).toBe(201);
    await tick();
    const report = await gc();
    expect(report.manifests).toEqual([]);
    expect(report.links).toEqual([{ repository: 'other', digest: shared }]);
    expect(report.blobs).toEqual([]);
    expect(await blobStatus(reg.url, 'images/app', shared)).toBe(200);
    expect(await blobStatus(reg.url, 'other', shared)).toBe(404);
    expect(await manifestStatus(reg.url, 'signatures/app', signature.digest)).toBe(200);
    expect(await reg.metadata.repositoryExists('other')).toBe(false);
  });

  it('keeps everything younger than the grace period', async () => {
    await pushImage(reg.url, 'young');
    await pushBlob(reg.url, 'young', 'loose');
    await tick();
    const report = await gc({ gracePeriodMs: 3600_000 });
    expect([report.tags, report.manifests, report.links, report.blobs, report.bytesFreed]).toEqual([[], [], [], [], 0]);
    expect(report.repositories).toBe(1);
  });

  it('a dry run deletes nothing and reports what the real run then deletes', async () => {
    const kept = await pushImage(reg.url, 'dry', 'v1');
    const gone = await pushImage(reg.url, 'dry');
    await pushBlob(reg.url, 'dry', 'loose');
    await tick();
    const dry = await gc({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(dry.manifests).toEqual([{ repository: 'dry', digest: gone.digest }]);
    expect(dry.blobs).toHaveLength(3);
    for (const b of [...gone.blobs, ...kept.blobs]) expect(await reg.blobs.stat(b)).toBeDefined();
    expect(await manifestStatus(reg.url, 'dry', gone.digest)).toBe(200);
    const real = await gc();
    const strip = ({ durationMs: _d, dryRun: _r, ...rest }: GcReport) => rest;
    expect(strip(real)).toEqual(strip(dry));
    expect(await manifestStatus(reg.url, 'dry', gone.digest)).toBe(404);
  });

  it('refuses to run beside another collection holding the lock', async () => {
    expect(await reg.metadata.lockGc('someone-else', Date.now(), 0)).toBeUndefined();
    await expect(gc()).rejects.toMatchObject({ code: 'REGISTRY', message: expect.stringContaining('another garbage collection is running (someone-else') });
    await reg.metadata.unlockGc('someone-else', 0);
    await expect(gc()).resolves.toMatchObject({ dryRun: false });
  });
});

describe('collectGarbage: retention', () => {
  it('keepLast keeps the most recently pushed tags (signature tags exempt) and only in matching repositories', async () => {
    const pushed: Pushed[] = [];
    for (let i = 1; i <= 5; i++) {
      pushed.push(await pushImage(reg.url, 'ci/app', `build-${i}`));
      await tick(3);
    }
    const newest = pushed[4] as Pushed;
    await pushImage(reg.url, 'ci/app', sigTag(newest));
    const oldestSig = await pushImage(reg.url, 'ci/app', sigTag(pushed[0] as Pushed));
    for (let i = 1; i <= 3; i++) await pushImage(reg.url, 'prod/app', `release-${i}`);
    await tick();
    const retention = [{ repository: 'ci/**', keepLast: 2 }];

    const dry = await gc({ dryRun: true, retention });
    expect(dry.tags.map((t) => t.tag).sort()).toEqual(['build-1', 'build-2', 'build-3', sigTag(pushed[0] as Pushed)].sort());
    expect(await reg.metadata.listTags('ci/app')).toHaveLength(7);

    const report = await gc({ retention });
    expect(report.tags).toEqual(dry.tags);
    expect(report.manifests.map((m) => m.digest).sort()).toEqual([...pushed.slice(0, 3).map((p) => p.digest), oldestSig.digest].sort());
    expect((await reg.metadata.listTags('ci/app'))?.sort()).toEqual(['build-4', 'build-5', sigTag(newest)].sort());
    expect(await reg.metadata.listTags('prod/app')).toEqual(['release-1', 'release-2', 'release-3']);
    expect(await expectConsistent(reg.url, reg.metadata, reg.blobs)).toBeGreaterThan(0);
  });

  it('deleteUntaggedAfter keeps untagged manifests longer in matching repositories', async () => {
    const slow = await pushImage(reg.url, 'slow/app');
    const fast = await pushImage(reg.url, 'fast/app');
    await tick();
    const report = await gc({ retention: [{ repository: 'slow/*', deleteUntaggedAfterMs: 3600_000 }] });
    expect(report.manifests).toEqual([{ repository: 'fast/app', digest: fast.digest }]);
    expect(await manifestStatus(reg.url, 'slow/app', slow.digest)).toBe(200);
    for (const b of slow.blobs) expect(await blobStatus(reg.url, 'slow/app', b)).toBe(200);
  });
});
