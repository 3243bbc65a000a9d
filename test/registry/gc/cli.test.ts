import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../../oci/errors.js';
import { openTarget } from '../../../oci/transports.js';
import type { GcReport } from '../../../registry/gc/collect.js';
import { runKiln } from '../../support/kiln.js';
import { makeRandomImage, type RandomImage, writeImageToTarget } from '../../support/random-image.js';
import { type ServeProcess, startServe } from '../../support/serve.js';
import { blobStatus, manifestStatus, pushImage } from './helpers.js';

let work: string;
let data: string;
let server: ServeProcess;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-gc-cli-'));
  data = join(work, 'data');
  server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
});
afterAll(async () => {
  await server?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Polls `check` until it returns true (the server notices sweeps of other processes within ~2 s). */
async function eventually(check: () => Promise<boolean>, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function pushWithRetry(host: string, repository: string, tag: string, image: RandomImage): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const target = await openTarget(`${host}/${repository}:${tag}`, { mode: 'write' });
    try {
      await writeImageToTarget(target, image, tag);
      return;
    } catch (err) {
      // A collector with no grace period may sweep blobs uploaded a moment ago: the push fails cleanly, and is retried.
      if (!isKilnError(err, 'MANIFEST_BLOB_UNKNOWN', 'BLOB_UNKNOWN', 'BLOB_UPLOAD_UNKNOWN') || attempt >= 100) throw err;
    } finally {
      await target.close();
    }
  }
}

async function expectImage(url: string, repository: string, tag: string, image: RandomImage): Promise<void> {
  const res = await fetch(`${url}/v2/${repository}/manifests/${tag}`, { headers: { accept: image.manifest.mediaType } });
  expect(res.status, `${repository}:${tag}`).toBe(200);
  expect(Buffer.from(await res.arrayBuffer())).toEqual(image.manifest.bytes);
  for (const d of [image.configDesc.digest, ...image.layers.map((l) => l.desc.digest)]) expect(await blobStatus(url, repository, d)).toBe(200);
}

describe('kiln gc against the data of a running kiln serve', () => {
  it('--dry-run lists and keeps; a real run deletes, applies retention, and the server stops serving what went', async () => {
    const builds = [];
    for (let i = 1; i <= 3; i++) {
      builds.push(await pushImage(server.url, 'ci/app', `build-${i}`));
      await new Promise((r) => setTimeout(r, 5));
    }
    const junk = await pushImage(server.url, 'junk/app');
    // Cached by the server (by tag and by digest) before another process deletes them.
    expect(await manifestStatus(server.url, 'ci/app', 'build-1')).toBe(200);
    expect(await manifestStatus(server.url, 'junk/app', junk.digest)).toBe(200);
    const config = join(work, 'gc.yml');
    await writeFile(config, `storage:\n  filesystem:\n    rootdirectory: ${data}\ngc:\n  gracePeriod: 0s\nretention:\n  - repository: "ci/**"\n    keepLast: 1\n`);

    const dry = await runKiln(['gc', '--config', config, '--dry-run', '--format', 'json']);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as GcReport;
    expect(planned.dryRun).toBe(true);
    expect(planned.tags.map((t) => t.tag).sort()).toEqual(['build-1', 'build-2']);
    expect(planned.manifests.map((m) => m.digest).sort()).toEqual([builds[0]?.digest, builds[1]?.digest, junk.digest].sort());
    expect(planned.bytesFreed).toBeGreaterThan(0);
    expect(await manifestStatus(server.url, 'junk/app', junk.digest)).toBe(200);
    expect(await manifestStatus(server.url, 'ci/app', 'build-2')).toBe(200);

    const real = await runKiln(['gc', '--config', config]);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain(`deleted manifest junk/app@${junk.digest}`);
    expect(real.stdout).toContain('deleted tag      ci/app:build-1');
    expect(real.stdout).toMatch(/^freed \d+(\.\d)? (B|KiB): deleted 2 tags, 3 manifests, \d+ blob links?, \d+ blobs? in 2 repositories/m);
    await eventually(async () => (await manifestStatus(server.url, 'junk/app', junk.digest)) === 404, 'the server to drop the deleted manifest');
    await eventually(async () => (await manifestStatus(server.url, 'ci/app', 'build-1')) === 404, 'the server to drop the retired tag');
    expect(await manifestStatus(server.url, 'ci/app', 'build-3')).toBe(200);
    for (const b of builds[2]?.blobs ?? []) expect(await blobStatus(server.url, 'ci/app', b)).toBe(200);

    const again = await runKiln(['gc', '--config', config, '--format', 'json']);
    expect((JSON.parse(again.stdout) as GcReport).manifests).toEqual([]);
  });

  it('runs repeatedly with no grace period while clients push: every pushed tag resolves and every blob verifies', async () => {
    const images = await Promise.all(Array.from({ length: 6 }, () => makeRandomImage({ layers: 2, layerSize: 2048 })));
    const pushes = Promise.all(
      images.map(async (image, i) => {
        // Each image is first pushed untagged elsewhere (garbage for the collector), then tagged.
        await pushWithRetry(server.host, `race/scratch${i}`, 'tmp', image);
        await fetch(`${server.url}/v2/race/scratch${i}/manifests/tmp`, { method: 'DELETE' });
        await pushWithRetry(server.host, `race/app${i % 2}`, `v${i}`, image);
      }),
    );
    const runs: GcReport[] = [];
    let done = false;
    void pushes.finally(() => (done = true)).catch(() => undefined);
    while (!done || runs.length < 2) {
      const run = await runKiln(['gc', '--data', data, '--grace-period', '0', '--format', 'json']);
      expect(run.code, run.stderr).toBe(0);
      runs.push(JSON.parse(run.stdout) as GcReport);
    }
    await pushes;
    for (const [i, image] of images.entries()) await expectImage(server.url, `race/app${i % 2}`, `v${i}`, image);
    const final = await runKiln(['gc', '--data', data, '--grace-period', '0', '--format', 'json']);
    expect(final.code, final.stderr).toBe(0);
    expect([...runs, JSON.parse(final.stdout) as GcReport].reduce((n, r) => n + r.manifests.length, 0)).toBeGreaterThan(0);
    for (const [i, image] of images.entries()) await expectImage(server.url, `race/app${i % 2}`, `v${i}`, image);
  });
});

describe('kiln gc usage', () => {
  it('documents its flags and refuses a directory without registry data with exit 2', async () => {
    const help = await runKiln(['gc', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['--config', '--data', '--dry-run', '--grace-period', '--format', 'keepLast', 'deleteUntaggedAfter']) expect(help.stdout).toContain(text);
    const empty = await runKiln(['gc', '--data', join(work, 'nothing-here')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('holds no kiln serve data');
    const bad = await runKiln(['gc', '--data', data, '--grace-period', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--grace-period');
    const config = join(work, 'bad-retention.yml');
    await writeFile(config, 'retention:\n  - repository: "ci/**"\n    keepLast: many\n');
    const invalid = await runKiln(['gc', '--config', config, '--data', data]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain('retention[0].keepLast');
  });
});

describe('online garbage collection in kiln serve', () => {
  it('collects on the configured interval and counts its runs and freed bytes in /metrics', async () => {
    const dir = join(work, 'online');
    const config = join(work, 'online.yml');
    await writeFile(config, `storage:\n  filesystem:\n    rootdirectory: ${dir}\ngc:\n  interval: 300ms\n  gracePeriod: 3s\n`);
    const online = await startServe(['--addr', '127.0.0.1:0', '--config', config]);
    try {
      const kept = await pushImage(online.url, 'app', 'v1');
      const junk = await pushImage(online.url, 'app');
      // Pushes are safe within the grace period; the untagged image goes once older than it.
      expect(await manifestStatus(online.url, 'app', junk.digest)).toBe(200);
      await eventually(async () => (await manifestStatus(online.url, 'app', junk.digest)) === 404, 'the online collection', 20_000);
      for (const b of kept.blobs) expect(await blobStatus(online.url, 'app', b)).toBe(200);
      const metrics = await (await fetch(`${online.url}/metrics`)).text();
      expect(Number(/^kiln_gc_runs_total\{result="ok"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(Number(/^kiln_gc_bytes_freed_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      expect(Number(/^kiln_gc_manifests_deleted_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
      expect(await online.stop()).toBe(0);
      expect(online.stderr()).toContain('garbage collection finished');
    } finally {
      await online.stop();
    }
  });
});
