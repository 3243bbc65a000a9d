import { isDigest, type Digest } from '../oci/digest.js';

/** `critical.type` of a cosign signature payload (sigstore/cosign pkg/cosign/payload). */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** Keys of `optional` that Kiln itself writes; `-a` annotations may not use them. */
export const RESERVED_OPTIONAL_KEYS = ['tag', 'timestamp'] as const;

/** What a signature payload says: the repository, the manifest digest, and the free-form `optional` claims. */
export interface SimpleSigningPayload {
  /** `critical.identity.docker-reference`: the repository the signer meant (cosign writes no tag). */
  dockerReference: string;
  /** `critical.image.docker-manifest-digest`. */
  manifestDigest: Digest;
  /** `optional`: annotations, and from Kiln the signed `tag` and the integer `timestamp` (Unix seconds). */
  optional: Record<string, unknown> | null;
}

/** Inputs of `buildPayload`. */
export interface PayloadInput {
  dockerReference: string;
  manifestDigest: Digest;
  annotations?: Record<string, string>;
  tag?: string;
  /** Unix seconds; omitted from the payload when undefined. */
  timestamp?: number;
}

/**
 * The simple-signing payload bytes exactly as cosign serialises them (Go encoding/json): field order
 * critical{identity,image,type}, optional, `optional` keys sorted, `<`, `>`, `&` escaped; `optional`
 * is null when empty.
 */
export function buildPayload(input: PayloadInput): Buffer {
  const optional: Record<string, unknown> = { ...input.annotations };
  if (input.tag !== undefined) optional.tag = input.tag;
  if (input.timestamp !== undefined) optional.timestamp = Math.floor(input.timestamp);
  const keys = Object.keys(optional).sort();
  const doc = {
    critical: {
      identity: { 'docker-reference': input.dockerReference },
      image: { 'docker-manifest-digest': input.manifestDigest },
      type: COSIGN_SIGNATURE_TYPE,
    },
    optional: keys.length === 0 ? null : Object.fromEntries(keys.map((k) => [k, optional[k]])),
  };
  return Buffer.from(goJson(doc), 'utf8');
}

/** Parses signed payload bytes; the result says why they are not a cosign image signature payload. */
export function parsePayload(bytes: Uint8Array): { ok: true; payload: SimpleSigningPayload } | { ok: false; reason: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return { ok: false, reason: 'the payload is not JSON' };
  }
  const critical = member(doc, 'critical');
  const type = member(critical, 'type');
  if (type !== COSIGN_SIGNATURE_TYPE) return { ok: false, reason: `critical.type is ${JSON.stringify(type)}, expected "${COSIGN_SIGNATURE_TYPE}"` };
  const reference = member(member(critical, 'identity'), 'docker-reference');
  if (typeof reference !== 'string' || reference === '') return { ok: false, reason: 'critical.identity.docker-reference is missing' };
  const digest = member(member(critical, 'image'), 'docker-manifest-digest');
  if (!isDigest(digest)) return { ok: false, reason: `critical.image.docker-manifest-digest ${JSON.stringify(digest)} is not a digest` };
  const optional = member(doc, 'optional');
  if (optional !== undefined && optional !== null && !isObject(optional)) return { ok: false, reason: 'optional must be an object or null' };
  return { ok: true, payload: { dockerReference: reference, manifestDigest: digest, optional: optional ?? null } };
}

/** `optional.timestamp` as a Date when it is an integer number of seconds. */
export function payloadTimestamp(payload: SimpleSigningPayload): Date | undefined {
  const value = payload.optional?.timestamp;
  return typeof value === 'number' && Number.isInteger(value) ? new Date(value * 1000) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function member(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

/** JSON as Go's encoding/json writes it: HTML-sensitive characters and U+2028/2029 escaped, \b and \f as \u00XX. */
function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/\\.|[<>&\u2028\u2029]/g, (m) => {
    if (m === '\\b') return '\\u0008';
    if (m === '\\f') return '\\u000c';
    if (m.length === 2) return m;
    return `\\u${(m.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`;
  });
}
