import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln, type KilnRun } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { kilnStore, withTarget, type Store } from './helpers.js';

const ENV = { COSIGN_PASSWORD: 'pw' };

describe('kiln sign / kiln verify of several images, and key validity windows', () => {
  let store: Store;
  let dir: string;
  let counter = 0;

  beforeAll(async () => {
    store = await kilnStore();
    dir = await mkdtemp(join(tmpdir(), 'kiln-many-'));
    const made = await runKiln(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env: ENV });
    expect(made.code, made.stderr).toBe(0);
  });
  afterAll(async () => {
    await store?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function push(): Promise<{ spec: string; image: RandomImage; repo: string }> {
    const repo = `many/app${++counter}`;
    const image = await makeRandomImage({ layers: 1, layerSize: 128 });
    await withTarget(store.spec(repo, ':1'), (t) => writeImageToTarget(t, image, '1'));
    return { spec: store.spec(repo, ':1'), image, repo };
  }

  const sign = (...args: string[]): Promise<KilnRun> => runKiln(['sign', '--key', join(dir, 'cosign.key'), ...args], { env: ENV });
  const verify = (...args: string[]): Promise<KilnRun> => runKiln(['verify', '--key', join(dir, 'cosign.pub'), ...args], { env: { KILN_TRUST_DIR: join(dir, 'trust') } });

  it('signs several images in one run and verifies them in one run (-o json: arrays)', async () => {
    const [a, b, c] = [await push(), await push(), await push()];
    const signed = await sign('--format', 'json', a.spec, b.spec, c.spec);
    expect(signed.code, signed.stderr).toBe(0);
    const results = JSON.parse(signed.stdout) as Array<{ digest: string; tagState: { version: number } }>;
    expect(results.map((r) => r.digest)).toEqual([a.image.manifest.digest, b.image.manifest.digest, c.image.manifest.digest]);
    expect(results.every((r) => r.tagState.version === 1)).toBe(true);
    const text = await verify(a.spec, b.spec, c.spec);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trim().split('\n').filter((l) => l.startsWith('Verified OK: '))).toHaveLength(3);
    const json = await verify('-o', 'json', a.spec, b.spec, c.spec);
    expect(json.code, json.stderr).toBe(0);
    const reports = JSON.parse(json.stdout) as Array<{ ok: boolean; digest: string }>;
    expect(reports.map((r) => [r.ok, r.digest])).toEqual([a, b, c].map((x) => [true, x.image.manifest.digest]));
  });

  it('checks every image, prints one line per failure and exits with the first failure’s status, in argument order', async () => {
    const signed = await push();
    const unsigned = await push();
    expect((await sign(signed.spec)).code).toBe(0);
    const missing = store.spec(signed.repo, ':nope');
    const first = await verify(signed.spec, unsigned.spec, missing);
    expect(first.code, first.stderr).toBe(10);
    expect(first.stdout).toMatch(/^Verified OK: /);
    const lines = first.stderr.trim().split('\n').filter((l) => l.startsWith('kiln: error: '));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/has no signatures/);
    expect(lines[1]).toMatch(/no such tag/);
    expect(lines[2]).toMatch(new RegExp(`2 of 3 images failed verification; the exit status is that of the first, ${unsigned.spec.replace(/[.]/g, '\\.')}`));
    const reversed = await verify('-o', 'json', missing, unsigned.spec, signed.spec);
    expect(reversed.code, reversed.stderr).toBe(11);
    const reports = JSON.parse(reversed.stdout) as Array<{ ok: boolean; failure?: { code: string } }>;
    expect(reports.map((r) => [r.ok, r.failure?.code])).toEqual([[false, 'TAG_NOT_FOUND'], [false, 'SIGNATURE_NOT_FOUND'], [true, undefined]]);
  });

  it('sign stops at the first image that fails, as cosign; those before it stay signed', async () => {
    const [a, c] = [await push(), await push()];
    const broken = `${store.spec(a.repo, ':absent')}`;
    const run = await sign(a.spec, broken, c.spec);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/signed 1 of 3 images before .*:absent failed/);
    expect((await verify(a.spec)).code).toBe(0);
    expect((await verify(c.spec)).code).toBe(10);
  });

  it('--key-valid-from/--key-valid-until reject signatures made outside the window (exit 12, naming the check)', async () => {
    const { spec } = await push();
    expect((await sign(spec)).code).toBe(0);
    expect((await verify('--key-valid-from', '2020-01-01T00:00:00Z', '--key-valid-until', '2999-01-01T00:00:00Z', spec)).code).toBe(0);
    const expired = await verify('--key-valid-until', '2020-01-01T00:00:00Z', spec);
    expect(expired.code, expired.stderr).toBe(12);
    expect(expired.stderr).toMatch(/validity check failed for .*: signed at .*, after .*cosign\.pub stopped being valid \(-∞ … 2020-01-01T00:00:00\.000Z\)/);
    const early = await verify('-o', 'json', '--key-valid-from', '2999-01-01T00:00:00Z', spec);
    expect(early.code, early.stderr).toBe(12);
    const report = JSON.parse(early.stdout) as { signatures: Array<{ checks: Array<{ check: string; ok: boolean }> }> };
    expect(report.signatures[0]?.checks.map((c) => `${c.check}:${c.ok}`)).toEqual(['signature:true', 'payload:true', 'validity:false']);
    const bad = await verify('--key-valid-until', 'next year', spec);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--key-valid-until "next year" is not an RFC 3339 time/);
  });

  it('a policy’s keyValidity bounds its keys the same way', async () => {
    const { spec } = await push();
    expect((await sign(spec)).code).toBe(0);
    const policy = async (keyValidity: Record<string, string>): Promise<string> => {
      const file = join(dir, `policy-${++counter}.json`);
      const requirement = { type: 'sigstoreSigned', keyPath: join(dir, 'cosign.pub'), signedIdentity: { type: 'matchRepository' }, keyValidity };
      await writeFile(file, JSON.stringify({ default: [requirement] }));
      return file;
    };
    const env = { env: { KILN_TRUST_DIR: join(dir, 'trust') } };
    const ok = await runKiln(['verify', '--policy', await policy({ from: '2020-01-01T00:00:00Z' }), spec], env);
    expect(ok.code, ok.stderr).toBe(0);
    const outside = await runKiln(['verify', '--policy', await policy({ until: '2020-01-01T00:00:00Z' }), spec], env);
    expect(outside.code, outside.stderr).toBe(12);
    expect(outside.stderr).toMatch(/validity check failed .*stopped being valid/);
  });
});
