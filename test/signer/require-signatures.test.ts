import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { freePort } from '../support/distribution.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln, type KilnRun } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { startServe, type ServeProcess } from '../support/serve.js';
import { withTarget } from './helpers.js';

// Issue 6 point 5: `kiln serve --require-signatures policy.json` refuses manifests pulled by tag unless signed by a
// trusted key and bound in the newest tag state. Images are signed in an OCI layout before they are published
// (pushes are never refused) and copied with --with-referrers, which carries the signatures and the tag state.

const ENV = { COSIGN_PASSWORD: 'pw' };


describe('kiln serve --require-signatures', () => {
  let dir: string;
  let host: string;
  let server: ServeProcess;
  let byDigest: ServeProcess;
  let policy: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-require-signatures-'));
    const made = await runKiln(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env: ENV });
    expect(made.code, made.stderr).toBe(0);
    host = `127.0.0.1:${await freePort()}`;
    const byDigestHost = `127.0.0.1:${await freePort()}`;
    policy = join(dir, 'policy.json');
    const secured = [{ type: 'sigstoreSigned', keyPath: 'cosign.pub', signedIdentity: { type: 'matchRepository' } }];
    await writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }], transports: { docker: { [`${host}/secure`]: secured, [`${byDigestHost}/secure`]: secured } } }));
    server = await startServe(['--addr', host, '--data', join(dir, 'data'), '--require-signatures', policy]);
    byDigest = await startServe(['--addr', byDigestHost, '--data', join(dir, 'data2'), '--require-signatures', policy, '--require-signatures-by-digest']);
  });
  afterAll(async () => {
    await server?.stop();
    await byDigest?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A random image in an OCI layout of its own per `registry/repo` (a layout holds one repository's tag state), signed there under `tag` (when `sign`). */
  async function layoutImage(tag: string, registry: string, repo: string, sign = true): Promise<{ image: RandomImage; spec: string }> {
    const image = await makeRandomImage({ layers: 1, layerSize: 256 });
    const spec = `oci:${join(dir, `layout-${`${registry}/${repo}`.replace(/[^a-z0-9]/g, '_')}`)}:${tag}`;
    await withTarget(spec, (t) => writeImageToTarget(t, image, tag));
    if (sign) {
      const run = await runKiln(['sign', '--key', join(dir, 'cosign.key'), '--identity', `${registry}/${repo}`, spec], { env: ENV });
      expect(run.code, run.stderr).toBe(0);
    }
    return { image, spec };
  }

  async function copy(from: string, to: string, ...extra: string[]): Promise<KilnRun> {
    const run = await runKiln(['copy', '-q', ...extra, from, to]);
    expect(run.code, run.stderr).toBe(0);
    return run;
  }

  async function get(registry: string, repo: string, ref: string): Promise<{ status: number; message: string }> {
    const res = await fetch(`http://${registry}/v2/${repo}/manifests/${ref}`);
    const text = await res.text();
    const message = res.status === 200 ? '' : ((JSON.parse(text) as { errors: Array<{ code: string; message: string }> }).errors[0]?.message ?? '');
    return { status: res.status, message };
  }

  it('refuses an unsigned tag with 403 DENIED naming the policy, serves it once signed and bound; other repositories are untouched', async () => {
    const { image: unsigned, spec: unsignedSpec } = await layoutImage('u1', host, 'secure/app', false);
    await copy(unsignedSpec, `${host}/secure/app:1`);
    const refused = await fetch(`http://${host}/v2/secure/app/manifests/1`);
    expect(refused.status).toBe(403);
    const body = (await refused.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('DENIED');
    expect(body.errors[0]?.message).toContain(policy);
    expect(body.errors[0]?.message).toMatch(/has no signatures/);
    expect((await fetch(`http://${host}/v2/secure/app/manifests/1`, { method: 'HEAD' })).status).toBe(403);
    // By digest: allowed without --require-signatures-by-digest.
    expect((await get(host, 'secure/app', unsigned.manifest.digest)).status).toBe(200);
    // Outside the policy's scope: served as usual.
    await copy(unsignedSpec, `${host}/dev/app:1`);
    expect((await get(host, 'dev/app', '1')).status).toBe(200);

    const signed = await layoutImage('s1', host, 'secure/app');
    await copy(signed.spec, `${host}/secure/app:s1`, '--with-referrers');
    expect((await get(host, 'secure/app', 's1')).status).toBe(200);
    // Clients read the signatures and the tag state through the same API: kiln verify passes, pulls work.
    const verified = await runKiln(['verify', '--key', join(dir, 'cosign.pub'), `${host}/secure/app:s1`], { env: { KILN_TRUST_DIR: join(dir, 'trust') } });
    expect(verified.code, verified.stderr).toBe(0);
    await copy(`${host}/secure/app:s1`, `oci:${join(dir, 'pulled')}:s1`);
    expect(verified.stdout).toContain(signed.image.manifest.digest);
  });

  it('refuses a tag moved to another signed image (tag binding), and a signature by an untrusted key', async () => {
    const first = await layoutImage('m1', host, 'secure/moved');
    await copy(first.spec, `${host}/secure/moved:m1`, '--with-referrers');
    expect((await get(host, 'secure/moved', 'm1')).status).toBe(200);
    const second = await layoutImage('m2', host, 'secure/moved');
    await copy(second.spec, `${host}/secure/moved:m2`, '--with-referrers');
    expect((await get(host, 'secure/moved', 'm2')).status).toBe(200);
    // The tag m1 re-pointed at the second (genuinely signed) image: the tag state binds m1 to the first.
    await copy(`${host}/secure/moved@${second.image.manifest.digest}`, `${host}/secure/moved:m1`);
    const moved = await get(host, 'secure/moved', 'm1');
    expect(moved.status).toBe(403);
    expect(moved.message).toMatch(new RegExp(`binding check failed: tag "m1" is bound to ${first.image.manifest.digest}`));

    const other = await runKiln(['keygen', '--output-key-prefix', join(dir, 'other')], { env: ENV });
    expect(other.code, other.stderr).toBe(0);
    const image = await makeRandomImage({ layers: 1, layerSize: 256 });
    const spec = `oci:${join(dir, 'other-layout')}:x`;
    await withTarget(spec, (t) => writeImageToTarget(t, image, 'x'));
    const run = await runKiln(['sign', '--key', join(dir, 'other.key'), '--identity', `${host}/secure/other`, spec], { env: ENV });
    expect(run.code, run.stderr).toBe(0);
    await copy(spec, `${host}/secure/other:x`, '--with-referrers');
    const untrusted = await get(host, 'secure/other', 'x');
    expect(untrusted.status).toBe(403);
    expect(untrusted.message).toMatch(/signature check failed/);
  });

  it('--require-signatures-by-digest also refuses unsigned pulls by digest, but never signature artifacts', async () => {
    const unsigned = await layoutImage('d1', byDigest.host, 'secure/app', false);
    await copy(unsigned.spec, `${byDigest.host}/secure/app@${unsigned.image.manifest.digest}`);
    expect((await get(byDigest.host, 'secure/app', unsigned.image.manifest.digest)).status).toBe(403);
    const signed = await layoutImage('d2', byDigest.host, 'secure/app');
    await copy(signed.spec, `${byDigest.host}/secure/app:d2`, '--with-referrers');
    expect((await get(byDigest.host, 'secure/app', signed.image.manifest.digest)).status).toBe(200);
    expect((await get(byDigest.host, 'secure/app', 'd2')).status).toBe(200);
    expect((await get(byDigest.host, 'secure/app', 'kiln-tag-state')).status).toBe(200);
    const referrers = (await (await fetch(`http://${byDigest.host}/v2/secure/app/referrers/${signed.image.manifest.digest}`)).json()) as { manifests: Array<{ digest: string }> };
    expect(referrers.manifests.length).toBeGreaterThan(0);
    for (const r of referrers.manifests) expect((await get(byDigest.host, 'secure/app', r.digest)).status).toBe(200);
    const verified = await runKiln(['verify', '--key', join(dir, 'cosign.pub'), `${byDigest.host}/secure/app:d2`], { env: { KILN_TRUST_DIR: join(dir, 'trust-d') } });
    expect(verified.code, verified.stderr).toBe(0);
  });

  it('refuses to start with a policy that does not parse', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"default": [{"type": "nope"}]');
    const run = await runKiln(['serve', '--addr', '127.0.0.1:0', '--data', join(dir, 'data3'), '--require-signatures', bad]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain(bad);
  });
});
