import { describe, expect, it } from 'vitest';
import { applyRotations, makeRotation, type StoredRotation } from '../../signer/key-rotation.js';
import { parseRfc3339, validAt, withValidity } from '../../signer/key-validity.js';
import { generateKeyPair, loadPublicKey, loadSigningKey, type SigningKey } from '../../signer/keys.js';
import { parsePolicy } from '../../signer/policy.js';
import { thrown } from '../support/errors.js';

const REPO = 'registry.example/app';
const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-06-01T00:00:00Z');
const T2 = new Date('2026-09-01T00:00:00Z');

async function key(name: string): Promise<SigningKey> {
  const pair = await generateKeyPair({ passphrase: '' });
  const loaded = await loadSigningKey({ pem: pair.privateKeyPem, passphrase: '', name });
  return { ...loaded, publicKey: { ...loadPublicKey(pair.publicKeyPem, `${name}.pub`) } };
}

function statement(from: SigningKey, to: SigningKey, validFrom: Date, source: string, repository = REPO): StoredRotation {
  const made = makeRotation({ oldKey: from, newKey: to.publicKey, repository, validFrom, now: validFrom });
  return { source, bytes: made.bytes, signature: made.signature };
}

describe('key validity windows', () => {
  it('accepts a signed time inside [from, until) only, and a window needs a signed time', async () => {
    const k = withValidity((await key('k')).publicKey, { from: T0, until: T1 });
    expect(validAt(k, T0).ok).toBe(true);
    expect(validAt(k, new Date(T1.getTime() - 1)).ok).toBe(true);
    expect(validAt(k, T1)).toMatchObject({ ok: false, detail: expect.stringMatching(/after k\.pub stopped being valid/) });
    expect(validAt(k, new Date(T0.getTime() - 1000))).toMatchObject({ ok: false, detail: expect.stringMatching(/before k\.pub became valid/) });
    expect(validAt(k, undefined)).toMatchObject({ ok: false, detail: expect.stringMatching(/no signed time/) });
    // Narrowing keeps the tighter bound of each end.
    expect(withValidity(k, { from: new Date('2025-01-01T00:00:00Z'), until: T2 }).validity).toEqual({ from: T0, until: T1 });
  });

  it('parses RFC 3339 strictly, and a policy keyValidity likewise', () => {
    expect(parseRfc3339('2026-01-01T01:00:00+01:00', 'x').toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(thrown(() => parseRfc3339('2026-01-01', '--key-valid-from'))).toMatchObject({ code: 'USAGE', message: expect.stringMatching(/--key-valid-from "2026-01-01" is not an RFC 3339 time/) });
    const policy = parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/k.pub', keyValidity: { until: '2026-06-01T00:00:00Z' } }] }), { source: 'p.json', baseDir: '/' });
    expect(policy.default[0]).toMatchObject({ keyValidity: { until: T1 } });
    const bad = (keyValidity: unknown): unknown => thrown(() => parsePolicy(JSON.stringify({ default: [{ type: 'sigstoreSigned', keyPath: '/k.pub', keyValidity }] }), { source: 'p.json', baseDir: '/' }));
    expect(bad({ until: 'tomorrow' })).toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/keyValidity\.until/) });
    expect(bad({})).toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/needs from, until or both/) });
    expect(bad({ from: '2026-06-01T00:00:00Z', until: '2026-01-01T00:00:00Z' })).toMatchObject({ message: expect.stringMatching(/from must be before until/) });
    expect(bad({ since: '2026-06-01T00:00:00Z' })).toMatchObject({ message: expect.stringMatching(/unknown field "since"/) });
  });
});

describe('key rotation chains', () => {
  it('follows a chain from the trusted key, cutting each old key at the hand-over', async () => {
    const [a, b, c] = [await key('a'), await key('b'), await key('c')];
    // Stored out of order: the chain is found whatever the order.
    const { keys, rotations } = applyRotations([a.publicKey], [statement(b, c, T2, 's1'), statement(a, b, T1, 's0')], REPO);
    expect(rotations.map((r) => r.ok)).toEqual([true, true]);
    const byId = new Map(keys.map((k) => [k.id, k]));
    expect(byId.get(a.publicKey.id)?.validity).toEqual({ until: T1 });
    expect(byId.get(b.publicKey.id)?.validity).toEqual({ from: T1, until: T2 });
    expect(byId.get(c.publicKey.id)?.validity).toEqual({ from: T2 });
  });

  it('ignores forged, altered, foreign and broken statements: the keys they name stay untrusted', async () => {
    const [a, b, c, evil] = [await key('a'), await key('b'), await key('c'), await key('evil')];
    const genuine = statement(a, b, T1, 'genuine');
    const doc = JSON.parse(genuine.bytes.toString()) as Record<string, string>;
    const altered: StoredRotation = { ...genuine, source: 'altered', bytes: Buffer.from(JSON.stringify({ ...doc, validFrom: T0.toISOString() })) };
    const cases: Array<[StoredRotation[], RegExp]> = [
      [[statement(evil, c, T1, 'forged')], /not signed by a trusted key/],
      [[altered], /not signed by a trusted key/],
      [[statement(a, b, T1, 'foreign', 'registry.example/other')], /is for registry\.example\/other, not registry\.example\/app/],
      // b → c without a → b: the chain from the trusted key is broken.
      [[statement(b, c, T2, 'broken')], /not signed by a trusted key/],
    ];
    for (const [stored, reason] of cases) {
      const { keys, rotations } = applyRotations([a.publicKey], stored, REPO);
      expect(keys.map((k) => k.id)).toEqual([a.publicKey.id]);
      expect(keys[0]?.validity).toBeUndefined();
      expect(rotations[0]).toMatchObject({ ok: false, detail: expect.stringMatching(reason) });
    }
  });

  it('refuses a fork (one key rotating to two keys) and a statement dated after its signer was rotated away', async () => {
    const [a, b, c] = [await key('a'), await key('b'), await key('c')];
    const fork = applyRotations([a.publicKey], [statement(a, b, T1, 'one'), statement(a, c, T2, 'two')], REPO);
    expect(fork.keys.map((k) => k.id)).toEqual([a.publicKey.id]);
    expect(fork.rotations.every((r) => !r.ok && /a fork/.test(r.detail))).toBe(true);
    // a is only trusted until T0 (a window given by the verifier): its statement issued at T1 does not count.
    const late = applyRotations([withValidity(a.publicKey, { until: T0 })], [statement(a, b, T1, 'late')], REPO);
    expect(late.keys).toHaveLength(1);
    expect(late.rotations[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/not dated within its signer's window/) });
  });
});
