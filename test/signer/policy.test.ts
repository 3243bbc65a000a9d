import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference } from '../../oci/reference.js';
import { dockerScopes, ociScopes, parsePolicy, requirementsFor, type SignedIdentity } from '../../signer/policy.js';
import { identityRule, parseAsWritten } from '../../signer/policy-identity.js';
import { policyImageOf } from '../../signer/policy-verify.js';
import { runKiln } from '../support/kiln.js';
import { makeRandomImage, writeImageToTarget } from '../support/random-image.js';
import { thrown } from '../support/errors.js';
import { kilnStore, withTarget, type Store } from './helpers.js';

const parse = (doc: unknown, baseDir = '/etc/kiln') => parsePolicy(JSON.stringify(doc), { source: 'policy.json', baseDir });

describe('containers-policy.json parsing', () => {
  it('reads requirements by transport and scope, resolving relative key paths against the policy directory', () => {
    const policy = parse({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'localhost:5000/app': [{ type: 'sigstoreSigned', keyPath: 'keys/cosign.pub', signedIdentity: { type: 'matchRepository' } }],
          '': [{ type: 'insecureAcceptAnything' }],
        },
      },
    });
    const req = policy.transports.docker?.['localhost:5000/app']?.[0];
    expect(req).toEqual({ type: 'sigstoreSigned', keys: [{ path: '/etc/kiln/keys/cosign.pub' }], signedIdentity: { type: 'matchRepository' } });
  });

  it('is strict: unknown fields, empty lists, missing default, two key sources and bad JSON are POLICY_INVALID naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ default: [{ type: 'reject', extra: 1 }] }, /default\[0\]: unknown field "extra"/],
      [{ default: [] }, /default: must be a non-empty array/],
      [{ transports: {} }, /default: required/],
      [{ default: [{ type: 'sigstoreSigned', keyPath: '/a', keyData: 'QQ==' }] }, /exactly one of keyPath, keyPaths, keyData, keyDatas/],
      [{ default: [{ type: 'sigstoreSigned', keyPath: '/a', signedIdentity: { type: 'matchEverything' } }] }, /signedIdentity.type: unknown signedIdentity type/],
      [{ default: [{ type: 'reject' }], surprise: true }, /\(top level\): unknown field "surprise"/],
    ];
    for (const [doc, message] of cases) {
      const err = thrown(() => parse(doc));
      expect(err.code).toBe('POLICY_INVALID');
      expect(err.message).toMatch(message);
    }
    expect(thrown(() => parsePolicy('{', { source: 'p.json', baseDir: '/' })).message).toMatch(/p\.json: not valid JSON/);
  });

  it('parses requirement types it cannot evaluate as rejecting ones (fail closed)', () => {
    const policy = parse({ default: [{ type: 'signedBy', keyType: 'GPGKeys', keyPath: '/k.gpg' }, { type: 'somethingNew' }, { type: 'sigstoreSigned', fulcio: {} }] });
    expect(policy.default.map((r) => r.type)).toEqual(['unsupported', 'unsupported', 'unsupported']);
  });

  it('picks the most specific docker scope, then the transport default, then the global default', () => {
    const policy = parse({
      default: [{ type: 'reject' }],
      transports: {
        docker: {
          'reg.example.com:5000/team/app:1': [{ type: 'insecureAcceptAnything' }],
          'reg.example.com:5000/team': [{ type: 'reject' }],
          '*.example.com': [{ type: 'insecureAcceptAnything' }],
        },
      },
    });
    const pick = (ref: string): string => requirementsFor(policy, 'docker', dockerScopes(parseReference(ref))).scope;
    expect(pick('reg.example.com:5000/team/app:1')).toBe('reg.example.com:5000/team/app:1');
    expect(pick('reg.example.com:5000/team/app:2')).toBe('reg.example.com:5000/team');
    expect(pick('reg.example.com:5000/other/app:2')).toBe('*.example.com');
    expect(pick('localhost:5000/x')).toBe('default');
    expect(dockerScopes(parseReference('a.b.c/ns/repo@sha256:' + 'a'.repeat(64)))).toEqual([
      `a.b.c/ns/repo@sha256:${'a'.repeat(64)}`, 'a.b.c/ns/repo', 'a.b.c/ns', 'a.b.c', '*.b.c', '*.c',
    ]);
    expect(ociScopes('/srv/images/app', 'v1')).toEqual(['/srv/images/app:v1', '/srv/images/app', '/srv/images', '/srv']);
    expect(policyImageOf('oci:/srv/images/app:v1')).toEqual({ transport: 'oci', dir: '/srv/images/app', tag: 'v1' });
    expect(policyImageOf('localhost:5000/app')).toMatchObject({ transport: 'docker', reference: { tag: 'latest' } });
  });
});

describe('signedIdentity rules', () => {
  const image = parseReference('reg.example/team/app:1');
  const byDigest = parseReference(`reg.example/team/app@sha256:${'b'.repeat(64)}`);
  const check = (rule: SignedIdentity, signed: string, img = image): boolean => identityRule(rule, img).match(signed).ok;

  it('follow containers-policy.json(5)', () => {
    expect(check({ type: 'matchRepository' }, 'reg.example/team/app')).toBe(true);
    expect(check({ type: 'matchRepository' }, 'reg.example/team/other')).toBe(false);
    // A cosign payload names no tag: an exact match on a tagged image cannot hold, as the man page warns.
    expect(check({ type: 'matchRepoDigestOrExact' }, 'reg.example/team/app')).toBe(false);
    expect(check({ type: 'matchRepoDigestOrExact' }, 'reg.example/team/app:1')).toBe(true);
    expect(check({ type: 'matchRepoDigestOrExact' }, 'reg.example/team/app', byDigest)).toBe(true);
    expect(check({ type: 'matchExact' }, 'reg.example/team/app:1')).toBe(true);
    expect(check({ type: 'matchExact' }, 'reg.example/team/app:2')).toBe(false);
    expect(check({ type: 'exactRepository', dockerRepository: 'vendor.example/app' }, 'vendor.example/app')).toBe(true);
    expect(check({ type: 'exactReference', dockerReference: 'vendor.example/app:1' }, 'vendor.example/app:1')).toBe(true);
    const remap: SignedIdentity = { type: 'remapIdentity', prefix: 'reg.example/team', signedPrefix: 'vendor.example/prod' };
    expect(check(remap, 'vendor.example/prod/app:1')).toBe(true);
    expect(check(remap, 'vendor.example/prod/app', byDigest)).toBe(true);
    expect(check(remap, 'reg.example/team/app:1')).toBe(false);
    expect(identityRule({ type: 'exactRepository', dockerRepository: 'vendor.example/app' }, image).repository).toBe('vendor.example/app');
    expect(() => identityRule({ type: 'matchRepository' }, undefined)).toThrow(/oci: images can only use exactReference or exactRepository/);
    expect(parseAsWritten('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
  });
});

describe('kiln verify --policy against kiln serve', () => {
  let store: Store;
  let dir: string;
  const ENV = { COSIGN_PASSWORD: 'pw' };

  beforeAll(async () => {
    store = await kilnStore();
    dir = await mkdtemp(join(tmpdir(), 'kiln-policy-'));
    expect((await runKiln(['keygen', '--output-key-prefix', join(dir, 'cosign')], { env: ENV })).code).toBe(0);
  });
  afterAll(async () => {
    await store?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function policyRun(doc: unknown, ref: string, ...extra: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
    const file = join(dir, `policy-${Math.random().toString(16).slice(2)}.json`);
    await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return runKiln(['verify', '--policy', file, ...extra, ref], { env: { KILN_TRUST_DIR: join(dir, 'trust') } });
  }

  it('accepts, rejects and fails closed per scope, with the right exit codes', async () => {
    const image = await makeRandomImage({ layers: 1 });
    const ref = store.spec('policy/app', ':1');
    await withTarget(ref, (t) => writeImageToTarget(t, image, '1'));
    const signed = await runKiln(['sign', '--key', join(dir, 'cosign.key'), ref], { env: ENV });
    expect(signed.code, signed.stderr).toBe(0);
    const repo = store.repository('policy/app');
    const sigstore = (identity: unknown): unknown => ({
      default: [{ type: 'reject' }],
      transports: { docker: { [repo]: [{ type: 'sigstoreSigned', keyPath: 'cosign.pub', ...(identity ? { signedIdentity: identity } : {}) }] } },
    });
    const ok = await policyRun(sigstore({ type: 'matchRepository' }), ref);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Verified OK/);
    const exact = await policyRun(sigstore(undefined), ref);
    expect(exact.code, exact.stderr).toBe(12);
    expect(exact.stderr).toMatch(/identity check failed .*matchRepoDigestOrExact wants exactly .*:1/);
    expect((await policyRun(sigstore(undefined), store.spec('policy/app', `@${image.manifest.digest}`))).code).toBe(0);
    const rejected = await policyRun({ default: [{ type: 'reject' }] }, ref);
    expect(rejected.code, rejected.stderr).toBe(12);
    expect(rejected.stderr).toMatch(/rejected by .*policy-.*\.json \(scope "default"\): the policy rejects every image here/);
    const unknown = await policyRun({ default: [{ type: 'insecureAcceptAnything' }, { type: 'teleport' }] }, ref);
    expect(unknown.code, unknown.stderr).toBe(12);
    expect(unknown.stderr).toMatch(/unknown requirement type "teleport"/);
    expect((await policyRun({ default: [{ type: 'insecureAcceptAnything' }] }, ref)).code).toBe(0);
    expect((await policyRun({ default: [{ type: 'insecureAcceptAnything' }] }, store.spec('policy/app', ':nope'))).code).toBe(11);
    const broken = await policyRun('{"default": [', ref);
    expect(broken.code, broken.stderr).toBe(1);
    expect(broken.stderr.trim()).toMatch(/^kiln: error: .*policy-.*\.json: not valid JSON/);
    const missingKey = await policyRun({ default: [{ type: 'sigstoreSigned', keyPath: '/nonexistent/cosign.pub' }] }, ref);
    expect(missingKey.code, missingKey.stderr).toBe(1);
    expect(missingKey.stderr).toMatch(/cannot read key \/nonexistent\/cosign\.pub: no such file/);
  });
});
