import { digestOf } from '../oci/digest.js';
import { errorMessage } from '../oci/errors.js';
import { loadPublicKey, publicKeyToPem, signBytes, verifyBytes, type PublicKey, type SigningKey } from './keys.js';
import { validAt, withValidity } from './key-validity.js';

// Key rotation by signing the new key with the old one. A rotation statement names the repository, the old key
// and the new key (both PKIX PEM) and the time the new key takes over (`validFrom`); it is signed by the old key
// and stored as a layer of the repository's tag-state artifact (kiln-tag-state), so copies and mirrors carry it.
// A verifier trusting the old key follows every unbroken chain of valid statements: each new key is trusted from
// its `validFrom`, and the key it replaces only for signatures (and tag states) dated before that time. Rules that
// keep a stolen old key from re-routing trust: a statement must be dated within its signer's own window, a key
// rotates once (two different statements by one key are a fork: neither counts), and a key already trusted is
// never rotated to again (no cycles).

/** Media type of a rotation-statement layer in the tag-state artifact. */
export const KEY_ROTATION_MEDIA_TYPE = 'application/vnd.dev.kiln.key-rotation.v1+json';

/** The signed statement: "in `repository`, `key` hands over to `newKey` from `validFrom`". */
export interface KeyRotation {
  type: 'kiln key rotation';
  repository: string;
  /** The old key, PKIX PEM (the verifier still only trusts it when it is one of its own keys). */
  key: string;
  newKey: string;
  validFrom: string;
  issued: string;
}

/** A statement as stored: its bytes, the old key's base64 signature over them, and where it was found. */
export interface StoredRotation {
  source: string;
  bytes: Buffer;
  signature: string;
}

/** What became of one stored statement during `applyRotations`. */
export interface RotationCheck {
  source: string;
  ok: boolean;
  detail: string;
  /** Ids of the old and the new key, when the statement was opened. */
  from?: string;
  to?: string;
}

/** Makes a rotation statement from `oldKey` to `newKey`, signed by the old key. */
export function makeRotation(options: { oldKey: SigningKey; newKey: PublicKey; repository: string; validFrom: Date; now: Date }): { statement: KeyRotation; bytes: Buffer; signature: string } {
  const statement: KeyRotation = {
    type: 'kiln key rotation',
    repository: options.repository,
    key: publicKeyToPem(options.oldKey.publicKey.key),
    newKey: publicKeyToPem(options.newKey.key),
    validFrom: options.validFrom.toISOString(),
    issued: options.now.toISOString(),
  };
  const bytes = Buffer.from(JSON.stringify(statement), 'utf8');
  return { statement, bytes, signature: signBytes(options.oldKey, bytes).toString('base64') };
}

/** Parses a statement's bytes (signature already checked): the two keys loaded, or why it is malformed. */
export function openRotation(bytes: Buffer, source: string): { rotation: KeyRotation; oldKey: PublicKey; newKey: PublicKey; validFrom: Date; issued: Date } | { reason: string } {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { reason: 'the rotation statement is not JSON' };
  }
  const { repository, key, newKey, validFrom, issued } = doc ?? {};
  if (doc?.type !== 'kiln key rotation' || typeof repository !== 'string' || typeof key !== 'string' || typeof newKey !== 'string') return { reason: 'the rotation statement is malformed' };
  if (typeof validFrom !== 'string' || typeof issued !== 'string' || Number.isNaN(Date.parse(validFrom)) || Number.isNaN(Date.parse(issued))) return { reason: 'the rotation statement has no valid validFrom/issued times' };
  try {
    const rotation: KeyRotation = { type: 'kiln key rotation', repository, key, newKey, validFrom, issued };
    const old = loadPublicKey(key, `the old key of ${source}`);
    const next = loadPublicKey(newKey, `the new key of ${source}`);
    return { rotation, oldKey: old, newKey: { ...next, name: `rotated key ${next.id.slice(0, 12)}` }, validFrom: new Date(validFrom), issued: new Date(issued) };
  } catch (err) {
    return { reason: `the rotation statement holds an invalid key: ${errorMessage(err)}` };
  }
}

/**
 * The keys to trust given `keys` and the stored rotation statements of `repository`: `keys` plus every key an
 * unbroken chain of valid statements leads to, with windows cut at each hand-over. Each statement's fate is
 * reported; invalid ones are ignored (a new key they name stays untrusted, so its signatures fail closed).
 */
export function applyRotations(keys: readonly PublicKey[], stored: readonly StoredRotation[], repository: string): { keys: PublicKey[]; rotations: RotationCheck[] } {
  const trusted = new Map(keys.map((k) => [k.id, k]));
  const checks = new Map<number, RotationCheck>();
  // Identical statements (a copy appended twice) count once.
  const unique: StoredRotation[] = [];
  const seen = new Set<string>();
  for (const s of stored) {
    const digest = digestOf(s.bytes);
    if (!seen.has(digest)) unique.push(s);
    seen.add(digest);
  }
  for (;;) {
    // One pass finds every statement signed by a key trusted so far; hand-overs apply after the pass, so all of a
    // key's statements are seen together and a fork is recognised.
    const candidates = new Map<string, Array<{ index: number; newKey: PublicKey; validFrom: Date }>>();
    for (const [index, s] of unique.entries()) {
      if (checks.has(index)) continue;
      const signature = Buffer.from(s.signature, 'base64');
      const signer = [...trusted.values()].find((k) => verifyBytes(k, s.bytes, signature));
      if (!signer) continue;
      const reject = (detail: string): void => void checks.set(index, { source: s.source, ok: false, detail, from: signer.id });
      const opened = openRotation(s.bytes, s.source);
      if ('reason' in opened) {
        reject(opened.reason);
        continue;
      }
      if (opened.rotation.repository !== repository) reject(`the statement is for ${opened.rotation.repository}, not ${repository}`);
      else if (opened.oldKey.id !== signer.id) reject(`the statement names key ${opened.oldKey.id.slice(0, 12)} as the old key, but ${signer.name} signed it`);
      else if (trusted.has(opened.newKey.id)) reject(`${opened.newKey.name} is already trusted (a key is never rotated to twice)`);
      else {
        const dated = validAt(signer, opened.issued);
        if (!dated.ok) reject(`the statement is not dated within its signer's window: ${dated.detail}`);
        else candidates.set(signer.id, [...(candidates.get(signer.id) ?? []), { index, newKey: opened.newKey, validFrom: opened.validFrom }]);
      }
    }
    if (candidates.size === 0) break;
    for (const [signerId, list] of candidates) {
      const signer = trusted.get(signerId);
      const first = list[0];
      if (!signer || !first) continue;
      if (list.length > 1) {
        for (const c of list) checks.set(c.index, { source: unique[c.index]?.source ?? '', ok: false, detail: `${signer.name} rotated to ${list.length} different keys (a fork): none is trusted`, from: signerId, to: c.newKey.id });
        continue;
      }
      trusted.set(signerId, withValidity(signer, { until: first.validFrom }));
      trusted.set(first.newKey.id, withValidity({ ...first.newKey, name: `${first.newKey.name} (rotated from ${signer.name})` }, { from: first.validFrom }));
      checks.set(first.index, { source: unique[first.index]?.source ?? '', ok: true, detail: `${signer.name} hands over to ${first.newKey.id.slice(0, 12)} from ${first.validFrom.toISOString()}`, from: signerId, to: first.newKey.id });
    }
  }
  for (const [index, s] of unique.entries()) {
    if (!checks.has(index)) checks.set(index, { source: s.source, ok: false, detail: 'not signed by a trusted key (forged, or its chain is broken)' });
  }
  return { keys: [...trusted.values()], rotations: [...checks.entries()].sort(([a], [b]) => a - b).map(([, c]) => c) };
}

/**
 * The keys `key` was rotated from, each valid statement followed backwards through the old key it names:
 * what a signer may extend a tag state of (a state signed by a predecessor of its key).
 */
export function predecessors(key: PublicKey, stored: readonly StoredRotation[]): PublicKey[] {
  const found: PublicKey[] = [];
  let current = key;
  for (let guard = 0; guard < stored.length; guard++) {
    const previous = stored
      .map((s) => ({ s, opened: openRotation(s.bytes, s.source) }))
      .find(({ s, opened }) => !('reason' in opened) && opened.newKey.id === current.id && verifyBytes(opened.oldKey, s.bytes, Buffer.from(s.signature, 'base64')));
    if (!previous || 'reason' in previous.opened || found.some((k) => k.id === (previous.opened as { oldKey: PublicKey }).oldKey.id)) break;
    current = previous.opened.oldKey;
    found.push(current);
  }
  return found;
}
