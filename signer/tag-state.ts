import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, isDigest, type Digest } from '../oci/digest.js';
import { errorMessage, KilnError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { Target } from '../oci/target.js';
import { getTagged, isStoredDataProblem, putBytes, readSmallBlob, SIGNATURE_ANNOTATION } from './attach.js';
import { signBytes, verifyBytes, type PublicKey, type SigningKey } from './keys.js';
import type { TrustCache } from './trust-cache.js';

// Tag binding and freshness (what cosign lacks): per repository, one signed document mapping every signed tag
// to its digest, with a version that only grows and an expiry, stored as an OCI artifact tagged
// `kiln-tag-state` in the repository itself. The model follows TUF's snapshot/timestamp roles with one key.

/** The tag the newest tag state is stored under. */
export const TAG_STATE_TAG = 'kiln-tag-state';
/** Media type (and artifactType) of the tag-state document. */
export const TAG_STATE_MEDIA_TYPE = 'application/vnd.dev.kiln.tag-state.v1+json';
/** Default lifetime of a tag state: a tag must be re-signed within it or verification fails. */
export const DEFAULT_TAG_STATE_TTL_SECONDS = 30 * 86400;

/** The signed document: repository, a growing version, issue and expiry times, and tag → digest. */
export interface TagState {
  type: 'kiln tag state';
  repository: string;
  version: number;
  issued: string;
  expires: string;
  tags: Record<string, Digest>;
}

/** A tag state read from storage: the document bytes, the signature over them, and its parse. */
export interface StoredTagState {
  bytes: Buffer;
  signature: string;
  manifestDigest: Digest;
}

/** The tag state stored in `target`; undefined when there is none. Malformed storage is MANIFEST_INVALID. */
export async function readTagState(target: Target): Promise<StoredTagState | undefined> {
  const manifest = await getTagged(target, TAG_STATE_TAG);
  if (!manifest) return undefined;
  const layer = manifest.kind === 'manifest' ? manifest.parsed.layers.find((l) => l.mediaType === TAG_STATE_MEDIA_TYPE) : undefined;
  const signature = layer?.annotations?.[SIGNATURE_ANNOTATION];
  if (!layer || signature === undefined) {
    throw new KilnError('MANIFEST_INVALID', `${TAG_STATE_TAG} in ${target.description} holds no signed tag-state layer`);
  }
  return { bytes: await readSmallBlob(target, layer), signature, manifestDigest: manifest.digest };
}

/**
 * Checks a stored state: signed by one of `keys`, well-formed, for `repository`. Returns the state, or
 * why it is not acceptable (expiry and freshness are the caller's, who knows the time and the cache).
 */
export function openTagState(stored: StoredTagState, keys: readonly PublicKey[], repository: string): { state: TagState } | { reason: string } {
  const signature = Buffer.from(stored.signature, 'base64');
  // Signature first: nothing in the document is believed before it is known to come from a trusted key.
  if (!keys.some((k) => verifyBytes(k, stored.bytes, signature))) return { reason: 'the tag state is not signed by a trusted key' };
  const state = parseTagState(stored.bytes);
  if (!state) return { reason: 'the tag state document is malformed' };
  if (state.repository !== repository) return { reason: `the tag state is for ${state.repository}, not ${repository}` };
  return { state };
}

/**
 * The repository's current tag state, which the next one extends: undefined when there is none; an
 * error when it is unreadable or not signed by `key` (one key role: a signer only extends its own states).
 */
export async function currentTagState(options: { target: Target; key: SigningKey; repository: string }): Promise<TagState | undefined> {
  const { target, repository } = options;
  let stored: StoredTagState | undefined;
  try {
    stored = await readTagState(target);
  } catch (err) {
    if (!isStoredDataProblem(err)) throw err;
    throw new KilnError('MANIFEST_INVALID', `the tag state of ${repository} is unreadable; not building on it`, { cause: err });
  }
  if (!stored) return undefined;
  const opened = openTagState(stored, [options.key.publicKey], repository);
  if ('reason' in opened) {
    throw new KilnError('VALIDATION', `cannot extend the tag state of ${repository}: ${opened.reason} (this key did not sign it)`, {
      hint: 'sign with the key that signed this repository before',
    });
  }
  return opened.state;
}

/**
 * Writes the next tag state of the repository, signed with `key`: `previous` (from `currentTagState`)
 * with `tag` → `digest`, version + 1, expiring `ttlSeconds` after `now`.
 */
export async function updateTagState(options: {
  target: Target;
  key: SigningKey;
  repository: string;
  previous: TagState | undefined;
  tag: string;
  digest: Digest;
  now: Date;
  ttlSeconds?: number;
}): Promise<TagState> {
  const { target, key, repository, previous } = options;
  const ttl = options.ttlSeconds ?? DEFAULT_TAG_STATE_TTL_SECONDS;
  const state: TagState = {
    type: 'kiln tag state',
    repository,
    version: (previous?.version ?? 0) + 1,
    issued: options.now.toISOString(),
    expires: new Date(options.now.getTime() + ttl * 1000).toISOString(),
    tags: sortedTags({ ...previous?.tags, [options.tag]: options.digest }),
  };
  const bytes = Buffer.from(JSON.stringify(state), 'utf8');
  const layer: Descriptor = {
    mediaType: TAG_STATE_MEDIA_TYPE,
    size: bytes.length,
    digest: digestOf(bytes),
    annotations: { [SIGNATURE_ANNOTATION]: signBytes(key, bytes).toString('base64') },
  };
  const empty = Buffer.from('{}');
  const config: Descriptor = { mediaType: MediaType.OciEmpty, size: empty.length, digest: digestOf(empty) };
  await putBytes(target, config, empty);
  await putBytes(target, layer, bytes);
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: TAG_STATE_MEDIA_TYPE,
    config,
    layers: [layer],
    annotations: { 'dev.kiln.tag-state.version': String(state.version) },
  };
  await target.putManifest(parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OciManifest), TAG_STATE_TAG);
  return state;
}

function parseTagState(bytes: Buffer): TagState | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const d = doc as Record<string, unknown>;
  const tags = d.tags;
  if (d.type !== 'kiln tag state' || typeof d.repository !== 'string' || !Number.isSafeInteger(d.version) || (d.version as number) < 1) return undefined;
  if (typeof d.issued !== 'string' || typeof d.expires !== 'string' || Number.isNaN(Date.parse(d.expires)) || Number.isNaN(Date.parse(d.issued))) return undefined;
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags) || !Object.values(tags).every(isDigest)) return undefined;
  return { type: 'kiln tag state', repository: d.repository, version: d.version as number, issued: d.issued, expires: d.expires, tags: tags as Record<string, Digest> };
}

function sortedTags(tags: Record<string, Digest>): Record<string, Digest> {
  return Object.fromEntries(Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Names of the tag-binding checks, in order. */
export type TagBindingCheckName = 'state' | 'freshness' | 'expiry' | 'binding';

/** The outcome of `checkTagBinding`: each check run (stopping at the first failure) and the state's version. */
export interface TagBinding {
  ok: boolean;
  checks: Array<{ check: TagBindingCheckName; ok: boolean; detail: string }>;
  version?: number;
  expires?: string;
}

/**
 * Checks that `tag` is bound to `digest` by the newest valid tag state of `repository`: signed by a trusted
 * key, no older than a version `cache` has seen (recording newer ones), not expired, and mapping the tag there.
 */
export async function checkTagBinding(options: {
  target: Target;
  keys: readonly PublicKey[];
  repository: string;
  tag: string;
  digest: Digest;
  cache: TrustCache;
  now?: Date;
}): Promise<TagBinding> {
  const { tag, digest, repository } = options;
  const result: TagBinding = { ok: false, checks: [] };
  const record = (check: TagBindingCheckName, ok: boolean, detail: string): boolean => {
    result.checks.push({ check, ok, detail });
    return ok;
  };
  let stored: StoredTagState | undefined;
  try {
    stored = await readTagState(options.target);
  } catch (err) {
    if (!isStoredDataProblem(err)) throw err;
    record('state', false, `the tag state is unreadable: ${errorMessage(err)}`);
    return result;
  }
  if (!stored) {
    record('state', false, `${repository} has no tag state (${TAG_STATE_TAG}), so nothing binds tag "${tag}" to a digest`);
    return result;
  }
  const opened = openTagState(stored, options.keys, repository);
  if ('reason' in opened) {
    record('state', false, opened.reason);
    return result;
  }
  const state = opened.state;
  Object.assign(result, { version: state.version, expires: state.expires });
  record('state', true, `version ${state.version}, signed by a trusted key`);
  const seen = await options.cache.seenVersion(repository);
  await options.cache.recordVersion(repository, state.version);
  if (seen !== undefined && !record('freshness', state.version >= seen, `version ${state.version}${state.version >= seen ? ' is current' : ` is older than version ${seen} seen before (rolled back)`}`)) {
    return result;
  }
  const now = options.now ?? new Date();
  if (!record('expiry', Date.parse(state.expires) > now.getTime(), `${Date.parse(state.expires) > now.getTime() ? 'valid until' : 'expired at'} ${state.expires}`)) {
    return result;
  }
  const bound = state.tags[tag];
  if (bound !== digest) {
    record('binding', false, bound === undefined ? `tag "${tag}" is not in the tag state (version ${state.version})` : `tag "${tag}" is bound to ${bound} (version ${state.version}), but points to ${digest}`);
    return result;
  }
  record('binding', true, `tag "${tag}" → ${digest}`);
  result.ok = true;
  return result;
}
