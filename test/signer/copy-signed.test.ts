import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_STATE_TAG } from '../../signer/tag-state.js';
import { runKiln, type KilnRun } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { at, distributionStore, kilnStore, layoutStore, withTarget, type Store } from './helpers.js';

const ENV = { COSIGN_PASSWORD: 'pw' };

// Issue 6 point 6: `kiln copy --with-referrers` carries the .sig tag, the bundle referrers and the repository's
// signed tag state, so a signed tag copied to another registry still verifies there, tag binding included.
describe.each([
  ['kiln serve', kilnStore],
  ['an OCI layout', layoutStore],
])('a tag signed on %s, copied --with-referrers to CNCF distribution', (_name, makeSource) => {
  let source: Store;
  let mirror: Store;
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    [source, mirror] = await Promise.all([makeSource(), distributionStore()]);
    dir = await mkdtemp(join(tmpdir(), 'kiln-copy-signed-'));
    const made = await runKiln(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env: ENV });
    expect(made.code, made.stderr).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([source?.stop(), mirror?.stop()]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function push(repo: string, tag: string): Promise<RandomImage> {
    const image = await makeRandomImage({ layers: 1, layerSize: 256 });
    await withTarget(source.spec(repo, `:${tag}`), (t) => writeImageToTarget(t, image, tag));
    return image;
  }

  async function sign(repo: string, ref: string): Promise<void> {
    const identity = source.identity(repo);
    const run = await runKiln(['sign', '--key', join(dir, 'cosign.key'), ...(identity === undefined ? [] : ['--identity', identity]), source.spec(repo, ref)], { env: ENV });
    expect(run.code, run.stderr).toBe(0);
  }

  async function copy(from: string, to: string, ...extra: string[]): Promise<KilnRun> {
    const run = await runKiln(['copy', '-q', ...extra, from, to]);
    expect(run.code, run.stderr).toBe(0);
    return run;
  }

  /** Verifies on the mirror as a mirror of the original repository, with a trust cache of its own per `cache`. */
  function verifyMirror(repo: string, ref: string, cache: string, ...extra: string[]): Promise<KilnRun> {
    return verifyMirrorOf(repo, repo, ref, cache, ...extra);
  }

  /** Verifies `mirrorRepo` on the mirror as a copy of the source's `repo`. */
  function verifyMirrorOf(repo: string, mirrorRepo: string, ref: string, cache: string, ...extra: string[]): Promise<KilnRun> {
    return runKiln(['verify', '--key', join(dir, 'cosign.pub'), '--identity', source.repository(repo), ...extra, mirror.spec(mirrorRepo, ref)], {
      env: { KILN_TRUST_DIR: join(dir, `trust-${cache}`) },
    });
  }

  it('verifies on the mirror with its tag binding (exit 0); without --with-referrers nothing signed comes along', async () => {
    const repo = `copied/app${++counter}`;
    const image = await push(repo, '1.0');
    await sign(repo, ':1.0');
    const copied = await copy(source.spec(repo, ':1.0'), mirror.spec(repo, ':1.0'), '--with-referrers', '--format', 'json');
    expect(JSON.parse(copied.stdout)).toMatchObject({ digest: image.manifest.digest, extraTags: [TAG_STATE_TAG] });
    const verified = await verifyMirror(repo, ':1.0', 'a', '-o', 'json');
    expect(verified.code, verified.stderr).toBe(0);
    const report = JSON.parse(verified.stdout) as { ok: boolean; tagBinding: { ok: boolean; version: number } };
    expect(report.tagBinding).toMatchObject({ ok: true, version: 1 });

    const bare = `copied/bare${counter}`;
    await copy(source.spec(repo, ':1.0'), mirror.spec(bare, ':1.0'));
    const unsigned = await verifyMirrorOf(repo, bare, ':1.0', 'a');
    expect(unsigned.code, unsigned.stderr).toBe(10);
  });

  it('a re-signed tag copied again carries the newer state; a copy by digest carries no tag state', async () => {
    const repo = `copied/app${++counter}`;
    await push(repo, '1');
    await sign(repo, ':1');
    await copy(source.spec(repo, ':1'), mirror.spec(repo, ':1'), '--with-referrers');
    expect((await verifyMirror(repo, ':1', 'b')).code).toBe(0);
    const next = await push(repo, '1');
    await sign(repo, ':1');
    await copy(source.spec(repo, ':1'), mirror.spec(repo, ':1'), '--with-referrers');
    const updated = await verifyMirror(repo, ':1', 'b', '-o', 'json');
    expect(updated.code, updated.stderr).toBe(0);
    expect((JSON.parse(updated.stdout) as { digest: string; tagBinding: { version: number } })).toMatchObject({ digest: next.manifest.digest, tagBinding: { version: 2 } });

    const byDigest = `copied/digest${counter}`;
    const run = await copy(source.spec(repo, at(next.manifest.digest)), mirror.spec(byDigest, ':1'), '--with-referrers', '--format', 'json');
    expect(JSON.parse(run.stdout)).toMatchObject({ extraTags: [] });
    const noState = await verifyMirrorOf(repo, byDigest, ':1', 'b');
    expect(noState.code, noState.stderr).toBe(12);
    expect(noState.stderr).toMatch(/has no tag state/);
  });
});
