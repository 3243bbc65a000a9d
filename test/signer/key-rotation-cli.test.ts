import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_ANNOTATION } from '../../signer/attach.js';
import { KEY_ROTATION_MEDIA_TYPE } from '../../signer/key-rotation.js';
import { TAG_STATE_TAG } from '../../signer/tag-state.js';
import { runKiln, type KilnRun } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { at, blobBytes, kilnStore, layoutStore, pushBlob, pushEdited, withTarget, type Store } from './helpers.js';

const ENV = { COSIGN_PASSWORD: 'pw' };

describe.each([
  ['kiln serve', kilnStore],
  ['an OCI layout', layoutStore],
])('key rotation (kiln rotate-key) on %s', (_name, makeStore) => {
  let store: Store;
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    store = await makeStore();
    dir = await mkdtemp(join(tmpdir(), 'kiln-rotation-'));
    for (const name of ['old', 'new', 'newer', 'evil']) {
      const made = await runKiln(['keygen', '--output-key-prefix', join(dir, name)], { env: ENV });
      expect(made.code, made.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await store?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const identity = (repo: string): string[] => {
    const id = store.identity(repo);
    return id === undefined ? [] : ['--identity', id];
  };

  async function push(repo: string, tag: string): Promise<RandomImage> {
    const image = await makeRandomImage({ layers: 1, layerSize: 128 });
    await withTarget(store.spec(repo, `:${tag}`), (t) => writeImageToTarget(t, image, tag));
    return image;
  }

  async function sign(key: string, repo: string, ref: string, expected = 0): Promise<KilnRun> {
    const run = await runKiln(['sign', '--key', join(dir, `${key}.key`), ...identity(repo), store.spec(repo, ref)], { env: ENV });
    expect(run.code, run.stderr).toBe(expected);
    return run;
  }

  async function rotate(from: string, to: string, repo: string, expected = 0, ...extra: string[]): Promise<KilnRun> {
    const run = await runKiln(['rotate-key', '--key', join(dir, `${from}.key`), '--new-key', join(dir, `${to}.pub`), ...identity(repo), ...extra, store.spec(repo, ':1').replace(/:1$/, '')], { env: ENV });
    expect(run.code, run.stderr).toBe(expected);
    return run;
  }

  function verify(key: string, repo: string, ref: string, ...extra: string[]): Promise<KilnRun> {
    return runKiln(['verify', '--key', join(dir, `${key}.pub`), ...identity(repo), ...extra, store.spec(repo, ref)], { env: { KILN_TRUST_DIR: join(dir, 'trust') } });
  }

  it('after a rotation, verifying with the old key accepts the new key’s signatures and tag state, and the old key’s earlier ones', async () => {
    const repo = `rot/a${++counter}`;
    await push(repo, '1');
    await sign('old', repo, ':1');
    const rotated = await rotate('old', 'new', repo);
    expect(rotated.stderr).toMatch(/Rotated .*: key [0-9a-f]{12} → [0-9a-f]{12} from /);
    await push(repo, '2');
    // The new key extends the tag state the old key signed (version 2).
    expect((await sign('new', repo, ':2')).stderr).toMatch(/version 2/);
    const two = await verify('old', repo, ':2', '-o', 'json');
    expect(two.code, two.stderr).toBe(0);
    const report = JSON.parse(two.stdout) as { rotations: Array<{ ok: boolean }>; signatures: Array<{ ok: boolean; key: { name: string } }>; tagBinding: { checks: Array<{ detail: string }> } };
    expect(report.rotations.map((r) => r.ok)).toEqual([true]);
    expect(report.signatures[0]?.key.name).toMatch(/rotated key [0-9a-f]{12} \(rotated from .*old\.pub\)/);
    expect(report.tagBinding.checks[0]?.detail).toMatch(/version 2, signed by rotated key/);
    // Tag 1 (signed by the old key before the rotation) is still bound in the new key's state.
    expect((await verify('old', repo, ':1')).code).toBe(0);
    // A key rotates once: a second statement would be a fork.
    expect((await rotate('old', 'newer', repo, 1)).stderr).toMatch(/was already rotated to key/);
  });

  it('the old key’s signatures made after the hand-over are rejected, and it can no longer sign the tag state', async () => {
    const repo = `rot/b${++counter}`;
    await push(repo, '1');
    await sign('old', repo, ':1');
    // A hand-over in the past: whatever the old key signs now is after it (signed timestamps are whole seconds).
    await rotate('old', 'new', repo, 0, '--valid-from', '2020-01-01T00:00:00Z');
    const late = await push(repo, '3');
    await sign('old', repo, at(late.manifest.digest));
    const rejected = await verify('old', repo, at(late.manifest.digest));
    expect(rejected.code, rejected.stderr).toBe(12);
    expect(rejected.stderr).toMatch(/validity check failed .*after .*old\.pub stopped being valid/);
    expect((await sign('old', repo, ':3', 1)).stderr).toMatch(/cannot sign the tag state of .* with .*old\.key now: .*stopped being valid/);
  });

  it('follows a chain old → new → newer; a forged or altered statement breaks it and fails closed (exit 12)', async () => {
    const repo = `rot/c${++counter}`;
    await push(repo, '1');
    await sign('old', repo, ':1');
    await rotate('old', 'new', repo);
    await rotate('new', 'newer', repo);
    await sign('newer', repo, ':1');
    expect((await verify('old', repo, ':1')).code).toBe(0);
    // A statement by an untrusted key names nothing trusted: evil's signatures fail.
    const forgedRepo = `rot/d${++counter}`;
    await push(forgedRepo, '1');
    await sign('old', forgedRepo, ':1');
    await rotate('evil', 'new', forgedRepo);
    await push(forgedRepo, '2');
    await sign('evil', forgedRepo, ':2', 1);
    const image = await push(forgedRepo, '4');
    const byNew = await runKiln(['sign', '--key', join(dir, 'new.key'), '--no-tag-state', ...identity(forgedRepo), store.spec(forgedRepo, at(image.manifest.digest))], { env: ENV });
    expect(byNew.code, byNew.stderr).toBe(0);
    const forged = await verify('old', forgedRepo, at(image.manifest.digest), '-o', 'json');
    expect(forged.code, forged.stderr).toBe(12);
    const report = JSON.parse(forged.stdout) as { rotations: Array<{ ok: boolean; detail: string }> };
    expect(report.rotations).toEqual([expect.objectContaining({ ok: false, detail: expect.stringMatching(/not signed by a trusted key/) })]);
    // Altering the genuine first statement of the chain (an earlier hand-over) breaks everything after it.
    await withTarget(store.spec(repo, ':1'), async (target) => {
      const artifact = await target.getManifest(TAG_STATE_TAG);
      const layers = artifact.kind === 'manifest' ? artifact.parsed.layers : [];
      const first = layers.find((l) => l.mediaType === KEY_ROTATION_MEDIA_TYPE);
      if (!first) throw new Error('no rotation layer');
      const doc = JSON.parse((await blobBytes(target, first)).toString()) as Record<string, string>;
      const changed = await pushBlob(target, KEY_ROTATION_MEDIA_TYPE, Buffer.from(JSON.stringify({ ...doc, validFrom: '2000-01-01T00:00:00.000Z' })), { [SIGNATURE_ANNOTATION]: first.annotations?.[SIGNATURE_ANNOTATION] ?? '' });
      await pushEdited(target, artifact, TAG_STATE_TAG, (d) => (d.layers = layers.map((l) => (l === first ? changed : l))));
    });
    const broken = await verify('old', repo, ':1');
    expect(broken.code, broken.stderr).toBe(12);
    expect(broken.stderr).toMatch(/state check failed: the tag state is not signed by a trusted key/);
  });
});
