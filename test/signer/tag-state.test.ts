import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAG_STATE_TAG } from '../../signer/tag-state.js';
import { runKiln, type KilnRun } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { at, distributionStore, kilnStore, layoutStore, withTarget, type Store } from './helpers.js';

const ENV = { COSIGN_PASSWORD: 'pw' };

describe.each([
  ['kiln serve', kilnStore],
  ['CNCF distribution', distributionStore],
  ['an OCI layout', layoutStore],
])('tag binding and freshness on %s', (_name, makeStore) => {
  let store: Store;
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    store = await makeStore();
    dir = await mkdtemp(join(tmpdir(), 'kiln-tag-state-'));
    for (const name of ['cosign', 'other']) {
      const made = await runKiln(['keygen', '--output-key-prefix', join(dir, name)], { env: ENV });
      expect(made.code, made.stderr).toBe(0);
    }
  });
  afterAll(async () => {
    await store?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function identityArgs(repo: string): string[] {
    const identity = store.identity(repo);
    return identity === undefined ? [] : ['--identity', identity];
  }

  async function push(repo: string, tag: string): Promise<RandomImage> {
    const image = await makeRandomImage({ layers: 1, layerSize: 128 });
    await withTarget(store.spec(repo, `:${tag}`), (t) => writeImageToTarget(t, image, tag));
    return image;
  }

  async function sign(repo: string, ref: string, ...extra: string[]): Promise<KilnRun> {
    const run = await runKiln(['sign', '--key', join(dir, 'cosign.key'), ...identityArgs(repo), ...extra, store.spec(repo, ref)], { env: ENV });
    expect(run.code, run.stderr).toBe(0);
    return run;
  }

  /** Verifies with a trust cache of its own per `cache` name (a fresh client, or one that has seen states). */
  function verify(repo: string, ref: string, cache = 'main', ...extra: string[]): Promise<KilnRun> {
    return runKiln(['verify', '--key', join(dir, 'cosign.pub'), ...identityArgs(repo), ...extra, store.spec(repo, ref)], {
      env: { KILN_TRUST_DIR: join(dir, `trust-${cache}`) },
    });
  }

  it('signing a tag records it; verify checks state, expiry and binding', async () => {
    const repo = `state/a${++counter}`;
    await push(repo, '1');
    const signed = await sign(repo, ':1');
    expect(signed.stderr).toMatch(/Tag state of .*: version 1, expires /);
    const ok = await verify(repo, ':1', 'main', '-o', 'json');
    expect(ok.code, ok.stderr).toBe(0);
    const report = JSON.parse(ok.stdout) as { tagBinding: { ok: boolean; version: number; checks: Array<{ check: string; ok: boolean }> } };
    expect(report.tagBinding.ok).toBe(true);
    expect(report.tagBinding.version).toBe(1);
    expect(report.tagBinding.checks.map((c) => c.check)).toEqual(['state', 'expiry', 'binding']);
  });

  it('a tag rolled back to an older signed digest fails the binding (exit 12)', async () => {
    const repo = `state/b${++counter}`;
    const old = await push(repo, '1');
    await sign(repo, ':1');
    const current = await push(repo, '1');
    await sign(repo, ':1');
    expect((await verify(repo, ':1')).code).toBe(0);
    // The attacker re-points the tag at the old image, whose signatures are genuine.
    await withTarget(store.spec(repo, ':1'), (t) => writeImageToTarget(t, old, '1'));
    expect((await verify(repo, at(old.manifest.digest))).code).toBe(0);
    const rolled = await verify(repo, ':1');
    expect(rolled.code, rolled.stderr).toBe(12);
    expect(rolled.stderr).toMatch(new RegExp(`binding check failed: tag "1" is bound to ${current.manifest.digest} \\(version 2\\), but points to ${old.manifest.digest}`));
    expect(rolled.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a tag state rolled back to an older version fails against a client that saw the newer one', async () => {
    const repo = `state/c${++counter}`;
    const old = await push(repo, '1');
    await sign(repo, ':1');
    const oldState = await withTarget(store.spec(repo, ':1'), (t) => t.getManifest(TAG_STATE_TAG));
    await push(repo, '1');
    await sign(repo, ':1');
    expect((await verify(repo, ':1', 'seen')).code).toBe(0);
    // Tag and state both rolled back consistently: only a client that remembers version 2 can tell.
    await withTarget(store.spec(repo, ':1'), async (t) => {
      await writeImageToTarget(t, old, '1');
      await t.putManifest(oldState, TAG_STATE_TAG);
    });
    const replayed = await verify(repo, ':1', 'seen');
    expect(replayed.code, replayed.stderr).toBe(12);
    expect(replayed.stderr).toMatch(/freshness check failed: version 1 is older than version 2 seen before \(rolled back\)/);
    // A fresh client has nothing to compare with: the expiry bounds that window.
    expect((await verify(repo, ':1', 'fresh')).code).toBe(0);
  });

  it('an expired tag state fails (exit 12) until the tag is signed again', async () => {
    const repo = `state/d${++counter}`;
    await push(repo, '1');
    await sign(repo, ':1', '--tag-state-expiry', '0');
    const expired = await verify(repo, ':1');
    expect(expired.code, expired.stderr).toBe(12);
    expect(expired.stderr).toMatch(/expiry check failed: expired at /);
    await sign(repo, ':1');
    expect((await verify(repo, ':1')).code).toBe(0);
  });

  it('a tag signed only by digest has no binding (exit 12) unless --no-tag-binding; tags of one repository share the state', async () => {
    const repo = `state/e${++counter}`;
    const image = await push(repo, '1');
    await sign(repo, at(image.manifest.digest));
    const unbound = await verify(repo, ':1');
    expect(unbound.code, unbound.stderr).toBe(12);
    expect(unbound.stderr).toMatch(/state check failed: .* has no tag state/);
    expect((await verify(repo, ':1', 'main', '--no-tag-binding')).code).toBe(0);
    await push(repo, '2');
    await sign(repo, ':2');
    await sign(repo, ':1');
    expect((await verify(repo, ':1')).code).toBe(0);
    expect((await verify(repo, ':2')).code).toBe(0);
  });

  it('a tag state signed by an untrusted key does not bind, and a key cannot extend another key’s state', async () => {
    const repo = `state/f${++counter}`;
    const image = await push(repo, '1');
    await sign(repo, at(image.manifest.digest));
    const byOther = await runKiln(['sign', '--key', join(dir, 'other.key'), ...identityArgs(repo), store.spec(repo, ':1')], { env: ENV });
    expect(byOther.code, byOther.stderr).toBe(0);
    const untrusted = await verify(repo, ':1');
    expect(untrusted.code, untrusted.stderr).toBe(12);
    expect(untrusted.stderr).toMatch(/state check failed: the tag state is not signed by a trusted key/);
    const refused = await runKiln(['sign', '--key', join(dir, 'cosign.key'), ...identityArgs(repo), store.spec(repo, ':1')], { env: ENV });
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/cannot extend the tag state .*this key did not sign it/);
    // Refused before anything was written: still only the one signature made by digest (plus other.key's).
    const json = JSON.parse((await verify(repo, at(image.manifest.digest), 'main', '-o', 'json')).stdout) as { signatures: unknown[] };
    expect(json.signatures).toHaveLength(4);
  });
});
