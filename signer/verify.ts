import { digestOf, type Digest } from '../oci/digest.js';
import { errorMessage } from '../oci/errors.js';
import { formatRepository, parseReference } from '../oci/reference.js';
import type { BundleSignature, CosignSignature } from './attach.js';
import { verifyBundle } from './bundle.js';
import { verifyBytes, type PublicKey } from './keys.js';
import { validAt } from './key-validity.js';
import { parsePayload, payloadTimestamp, type SimpleSigningPayload } from './payload.js';

/** The checks each signature goes through, in order (validity only for keys with a window); the first failure ends its evaluation. */
export type CheckName = 'signature' | 'payload' | 'validity' | 'digest' | 'identity' | 'age';

/** One check's outcome, with what was compared. */
export interface Check {
  check: CheckName;
  ok: boolean;
  detail: string;
}

/** Everything known about one stored signature after verification. */
export interface SignatureVerdict {
  source: string;
  form: 'cosign' | 'bundle';
  ok: boolean;
  checks: Check[];
  /** Id (sha256 of the PKIX key, hex) and name of the key that verified the signature. */
  key?: { id: string; name: string };
  dockerReference?: string;
  timestamp?: string;
  optional?: Record<string, unknown> | null;
}

/** What signatures must satisfy: trusted keys, the expected repository, an optional maximum age. */
export interface SignaturePolicy {
  keys: readonly PublicKey[];
  /** `registry/repository` the payload's docker-reference must name (unless `matchIdentity` decides). */
  repository: string;
  /** A policy's signedIdentity rule, replacing the repository comparison. */
  matchIdentity?: IdentityMatcher;
  /** Oldest acceptable `optional.timestamp`, in seconds before `now`. */
  maxAgeSeconds?: number;
  now?: Date;
}

/** Decides whether a signature's docker-reference is acceptable for the image, saying why. */
export type IdentityMatcher = (dockerReference: string) => { ok: boolean; detail: string };

/** How far a signature timestamp may lie in the future (clock skew) before it is refused. */
const FUTURE_SKEW_SECONDS = 300;

/**
 * Verifies cosign signatures of the image whose manifest is `manifest` (its exact bytes), independent of
 * where they are stored: crypto over the payload, payload form, digest, identity and age.
 */
export function verifyCosignSignatures(manifest: Buffer, signatures: readonly CosignSignature[], policy: SignaturePolicy): Promise<SignatureVerdict[]> {
  return verifyStoredSignatures({ digest: digestOf(manifest), cosign: signatures, bundles: [], policy });
}

/** Verifies every stored signature of the image with digest `digest`. */
export async function verifyStoredSignatures(input: {
  digest: Digest;
  cosign: readonly CosignSignature[];
  bundles: readonly BundleSignature[];
  policy: SignaturePolicy;
}): Promise<SignatureVerdict[]> {
  const { digest, policy } = input;
  const verdicts: SignatureVerdict[] = [];
  for (const s of input.cosign) {
    verdicts.push(await evaluate({ source: s.source, form: 'cosign', problem: s.problem, payload: s.payload }, digest, policy, async () => cosignCrypto(s, policy.keys)));
  }
  for (const b of input.bundles) {
    verdicts.push(await evaluate({ source: b.source, form: 'bundle', problem: b.problem, payload: b.payload }, digest, policy, () => verifyBundle(b.bundle, b.payload, policy.keys)));
  }
  return verdicts;
}

/** The one-line reason no signature matched, naming the failed check of the signature that got furthest. */
export function mismatchMessage(verdicts: readonly SignatureVerdict[]): string {
  const best = [...verdicts].sort((a, b) => passed(b) - passed(a))[0];
  const failed = best?.checks.find((c) => !c.ok);
  if (!best || !failed) return 'no signature matched';
  const others = verdicts.length > 1 ? ` (${verdicts.length} signatures checked, none matched)` : '';
  return `${failed.check} check failed for ${best.source}: ${failed.detail}${others}`;
}

function passed(verdict: SignatureVerdict): number {
  return verdict.checks.filter((c) => c.ok).length;
}

type CryptoResult = { key: PublicKey } | { reason: string };

function cosignCrypto(signature: CosignSignature, keys: readonly PublicKey[]): CryptoResult {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature.signature)) return { reason: 'the signature annotation is not base64' };
  const bytes = Buffer.from(signature.signature, 'base64');
  const key = keys.find((k) => verifyBytes(k, signature.payload, bytes));
  return key ? { key } : { reason: `signature does not verify with ${keys.map((k) => k.name).join(', ') || 'any key (none trusted)'}` };
}

async function evaluate(
  found: { source: string; form: 'cosign' | 'bundle'; problem: string | undefined; payload: Buffer },
  digest: Digest,
  policy: SignaturePolicy,
  crypto: () => Promise<CryptoResult>,
): Promise<SignatureVerdict> {
  const verdict: SignatureVerdict = { source: found.source, form: found.form, ok: false, checks: [] };
  const record = (check: CheckName, ok: boolean, detail: string): boolean => {
    verdict.checks.push({ check, ok, detail });
    return ok;
  };
  if (found.problem !== undefined) {
    record('signature', false, `malformed signature: ${found.problem}`);
    return verdict;
  }
  // Crypto first: nothing in the payload is read before it is known to be signed by a trusted key.
  let result: CryptoResult;
  try {
    result = await crypto();
  } catch (err) {
    result = { reason: errorMessage(err) };
  }
  if (!('key' in result)) {
    record('signature', false, result.reason);
    return verdict;
  }
  verdict.key = { id: result.key.id, name: result.key.name };
  record('signature', true, `verified with ${result.key.name}`);
  const parsed = parsePayload(found.payload);
  if (!parsed.ok) {
    record('payload', false, parsed.reason);
    return verdict;
  }
  const payload = parsed.payload;
  verdict.dockerReference = payload.dockerReference;
  verdict.optional = payload.optional;
  const ts = payloadTimestamp(payload);
  if (ts) verdict.timestamp = ts.toISOString();
  record('payload', true, 'cosign container image signature');
  // Only keys with a window (given, or ended by a rotation) are checked: a plain --key is valid at any time.
  if (result.key.validity !== undefined) {
    const validity = validAt(result.key, ts, 1000);
    if (!record('validity', validity.ok, validity.detail)) return verdict;
  }
  if (!record('digest', payload.manifestDigest === digest, payload.manifestDigest === digest ? digest : `signed digest ${payload.manifestDigest} is not the image's ${digest}`)) return verdict;
  if (policy.matchIdentity) {
    const matched = policy.matchIdentity(payload.dockerReference);
    if (!record('identity', matched.ok, matched.detail)) return verdict;
  } else if (!checkIdentity(payload, policy.repository, record)) return verdict;
  if (policy.maxAgeSeconds !== undefined && !checkAge(ts, policy, record)) return verdict;
  verdict.ok = true;
  return verdict;
}

function checkIdentity(payload: SimpleSigningPayload, expected: string, record: (c: CheckName, ok: boolean, d: string) => boolean): boolean {
  let signed: string;
  try {
    signed = formatRepository(parseReference(payload.dockerReference));
  } catch (err) {
    return record('identity', false, `docker-reference ${JSON.stringify(payload.dockerReference)} is not a reference: ${errorMessage(err)}`);
  }
  if (signed !== expected) return record('identity', false, `signed for ${signed}, not ${expected}`);
  return record('identity', true, signed);
}

function checkAge(ts: Date | undefined, policy: SignaturePolicy, record: (c: CheckName, ok: boolean, d: string) => boolean): boolean {
  const now = policy.now ?? new Date();
  const max = policy.maxAgeSeconds ?? 0;
  if (!ts) return record('age', false, 'the payload has no optional.timestamp, so its age is unknown');
  const age = (now.getTime() - ts.getTime()) / 1000;
  if (age < -FUTURE_SKEW_SECONDS) return record('age', false, `signed at ${ts.toISOString()}, in the future`);
  if (age > max) return record('age', false, `signed at ${ts.toISOString()}, ${Math.round(age)}s ago, over the maximum age of ${max}s`);
  return record('age', true, `signed ${Math.max(0, Math.round(age))}s ago`);
}
