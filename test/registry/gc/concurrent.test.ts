import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isKilnError } from '../../../oci/errors.js';
import { openTarget } from '../../../oci/transports.js';
import { collectGarbage, type GcReport } from '../../../registry/gc/collect.js';
import { makeRandomImage, type RandomImage, writeImageToTarget } from '../../support/random-image.js';
import { startTestRegistry, type TestRegistry } from '../helpers.js';
import { blobStatus, expectConsistent, manifestStatus, pushImage, tick } from './helpers.js';

let reg: TestRegistry;
beforeEach(async () => {
  reg = await startTestRegistry();
});
afterEach(() => reg.stop({ removeDir: true }));

/** Errors a push may meet when the collector swept what it had uploaded a moment before: clean refusals, retried. */
const RACE_CODES = ['MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_UNKNOWN'] as const;

interface Outcome {
  kept: Array<{ repository: string; tag: string; image: RandomImage }>;
  failures: string[];
}

/** Pushes `count` images to `repository`, untagging each one two pushes later so the collector has work. */
async function pusher(repository: string, count: number): Promise<Outcome> {
  const kept: Outcome['kept'] = [];
  const failures: string[] = [];
  for (let i = 0; i < count; i++) {
    const image = await makeRandomImage({ layers: 2, layerSize: 4096 });
    const tag = `t${i}`;
    for (let attempt = 1; ; attempt++) {
      const target = await openTarget(`${reg.host}/${repository}:${tag}`, { mode: 'write' });
      try {
        await writeImageToTarget(target, image, tag);
        break;
      } catch (err) {
        if (!isKilnError(err, ...RACE_CODES) || attempt >= 100) throw err;
        failures.push(err.code);
      } finally {
        await target.close();
      }
    }
    kept.push({ repository, tag, image });
    if (i >= 2) {
      const old = kept.shift();
      const res = await fetch(`${reg.url}/v2/${repository}/manifests/${old?.tag}`, { method: 'DELETE' });
      expect(res.status).toBe(202);
    }
  }
  return { kept, failures };
}

/** Collects in a loop until `done` settles; returns every report. */
async function collectWhile(done: Promise<unknown>, gracePeriodMs: number): Promise<GcReport[]> {
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  const reports: GcReport[] = [];
  while (!finished) {
    reports.push(await collectGarbage({ metadata: reg.metadata, blobs: reg.blobs, gracePeriodMs }));
    // Irregular gaps, so that a push's requests fall at every point of a run, and a retried push gets through.
    await tick(Math.random() * 25);
  }
  return reports;
}

async function expectImage(repository: string, tag: string, image: RandomImage): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${repository}/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } });
  expect(res.status, `${repository}:${tag}`).toBe(200);
  expect(Buffer.from(await res.arrayBuffer())).toEqual(image.manifest.bytes);
  for (const d of [image.configDesc.digest, ...image.layers.map((l) => l.desc.digest)]) expect(await blobStatus(reg.url, repository, d)).toBe(200);
}

describe('garbage collection under concurrent pushes', () => {
  it('with no grace period: every pushed tag resolves and every blob verifies; racing pushes fail cleanly and succeed on retry', async () => {
    const pushes = Promise.all([0, 1, 2, 3].map((k) => pusher(`conc/p${k}`, 8)));
    const reports = await collectWhile(pushes, 0);
    const outcomes = await pushes;
    // The collector really ran beside the pushes and really deleted untagged images meanwhile.
    expect(reports.length).toBeGreaterThan(3);
    expect(reports.reduce((n, r) => n + r.manifests.length, 0)).toBeGreaterThan(0);
    expect(reports.reduce((n, r) => n + r.bytesFreed, 0)).toBeGreaterThan(0);
    for (const o of outcomes) for (const k of o.kept) await expectImage(k.repository, k.tag, k.image);
    await expectConsistent(reg.url, reg.metadata, reg.blobs);

    // Once quiet, one more run leaves exactly the tagged images, still intact.
    await tick();
    await collectGarbage({ metadata: reg.metadata, blobs: reg.blobs, gracePeriodMs: 0 });
    for (const o of outcomes) {
      for (const k of o.kept) await expectImage(k.repository, k.tag, k.image);
      expect(await reg.metadata.listTags(o.kept[0]?.repository ?? '')).toEqual(o.kept.map((k) => k.tag));
    }
    expect(await expectConsistent(reg.url, reg.metadata, reg.blobs)).toBe(8);
    const failures = outcomes.flatMap((o) => o.failures);
    for (const f of failures) expect(RACE_CODES).toContain(f);
  });

  it('with a grace period: old garbage goes while concurrent pushes all succeed at the first attempt', async () => {
    const garbage = await pushImage(reg.url, 'old/app');
    await tick(1100);
    const pushes = Promise.all([0, 1, 2].map((k) => pusher(`fresh/p${k}`, 6)));
    const reports = await collectWhile(pushes, 1000);
    const outcomes = await pushes;
    expect(outcomes.flatMap((o) => o.failures)).toEqual([]);
    // The garbage went; whatever else went was an image untagged during the run (and older than the grace period).
    const deleted = reports.flatMap((r) => r.manifests);
    expect(deleted).toContainEqual({ repository: 'old/app', digest: garbage.digest });
    const tagged = new Set(outcomes.flatMap((o) => o.kept.map((k) => k.image.manifest.digest)));
    for (const m of deleted) expect(tagged.has(m.digest)).toBe(false);
    expect(await manifestStatus(reg.url, 'old/app', garbage.digest)).toBe(404);
    for (const o of outcomes) for (const k of o.kept) await expectImage(k.repository, k.tag, k.image);
    await expectConsistent(reg.url, reg.metadata, reg.blobs);
  });
});
