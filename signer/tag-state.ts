import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, isDigest, type Digest } from '../oci/digest.js';
import { KilnError } from '../oci/errors.js';
import { parseManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { Target } from '../oci/target.js';
import { EMPTY_CONFIG, EMPTY_JSON, getTagged, isStoredDataProblem, putBytes, readSmallBlob, SIGNATURE_ANNOTATION } from './attach.js';
import { applyRotations, KEY_ROTATION_MEDIA_TYPE, predecessors, type StoredRotation } from './key-rotation.js';
import { validAt } from './key-validity.js';
import { signBytes, verifyBytes, type PublicKey, type SigningKey } from './keys.js';
import type { TrustCache } from './trust-cache.js';
import { TAG_STATE_TAG } from './tag-state-tag.js';

// Tag binding and freshness (what cosign lacks): per repository, one signed document mapping every signed tag
// to its digest, with a version that only grows and an expiry, stored as an OCI artifact tagged
// `kiln-tag-state` in the repository itself. The model follows TUF's snapshot/timestamp roles with one key.

export { TAG_STATE_TAG } from './tag-state-tag.js';
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

/** A tag state read from storage: the document bytes and the signature over them. */
export interface StoredTagState {
  bytes: Buffer;
  signature: string;
}

/** The `kiln-tag-state` artifact: the signed state (absent when only rotations were stored) and the key rotations. */
export interface TagStateArtifact {
  state?: StoredTagState;
  /** The state's layer as stored (kept when only a rotation is added). */
  stateLayer?: Descriptor;
  rotations: StoredRotation[];
  /** The rotation layers as stored, carried over unchanged when the state is replaced. */
  rotationLayers: Descriptor[];
  manifestDigest: Digest;
}

/** The tag-state artifact stored in `target`; undefined when there is none. Malformed storage is MANIFEST_INVALID. */
export async function readTagStateArtifact(target: Target): Promise<TagStateArtifact | undefined> {
  const manifest = await getTagged(target, TAG_STATE_TAG);
  if (!manifest) return undefined;
  const layers = manifest.kind === 'manifest' ? manifest.parsed.layers : [];
  const stateLayers = layers.filter((l) => l.mediaType === TAG_STATE_MEDIA_TYPE);
  const rotationLayers = layers.filter((l) => l.mediaType === KEY_ROTATION_MEDIA_TYPE);
  const stateLayer = stateLayers[0];
  if (stateLayers.length > 1 || (stateLayer && stateLayer.annotations?.[SIGNATURE_ANNOTATION] === undefined) || (!stateLayer && rotationLayers.length === 0)) {
    throw new KilnError('MANIFEST_INVALID', `${TAG_STATE_TAG} in ${target.description} holds no single signed tag-state layer`);
  }
  const artifact: TagStateArtifact = { rotations: [], rotationLayers, manifestDigest: manifest.digest };
  if (stateLayer) {
    artifact.stateLayer = stateLayer;
    artifact.state = { bytes: await readSmallBlob(target, stateLayer), signature: stateLayer.annotations?.[SIGNATURE_ANNOTATION] ?? '' };
  }
  for (const [i, layer] of rotationLayers.entries()) {
    const source = `${TAG_STATE_TAG} rotation ${i}`;
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION] ?? '';
    try {
      artifact.rotations.push({ source, bytes: await readSmallBlob(target, layer), signature });
    } catch (err) {
      // An unreadable statement is as good as none: the key it names stays untrusted.
      if (!isStoredDataProblem(err)) throw err;
      artifact.rotations.push({ source, bytes: Buffer.alloc(0), signature });
    }
  }
  return artifact;
}

/**
 * Checks a stored state: signed by one of `keys` at a time (`issued`) within that key's window, well-formed,
 * for `repository`. Returns the state, or why it is not acceptable (expiry and freshness are the caller's).
 */
export function openTagState(stored: StoredTagState, keys: readonly PublicKey[], repository: string): { state: TagState; key: PublicKey } | { reason: string } {
  const signature = Buffer.from(stored.signature, 'base64');
  // Signature first: nothing in the document is believed before it is known to come from a trusted key.
  const key = keys.find((k) => verifyBytes(k, stored.bytes, signature));
  if (!key) return { reason: 'the tag state is not signed by a trusted key' };
  const state = parseTagState(stored.bytes);
  if (!state) return { reason: 'the tag state document is malformed' };
  if (state.repository !== repository) return { reason: `the tag state is for ${state.repository}, not ${repository}` };
  const valid = validAt(key, new Date(state.issued));
  if (!valid.ok) return { reason: `the tag state's key was not valid when it was issued: ${valid.detail}` };
  return { state, key };
}

/** What a signer builds on: the current state (if any) and the rotation layers to carry over. */
export interface CurrentTagState {
  previous?: TagState;
  rotationLayers: Descriptor[];
}

/**
 * The repository's current tag state, which the next one extends. An error when it is unreadable or not signed
 * by `key` or a key `key` was rotated from (one key role: a signer only extends its own line of states), or when
 * `key` is outside its window now (rotated away, or not yet taken over).
 */
export async function currentTagState(options: { target: Target; key: SigningKey; repository: string; now: Date; artifact?: Promise<TagStateArtifact | undefined> }): Promise<CurrentTagState> {
  const { target, repository } = options;
  let artifact: TagStateArtifact | undefined;
  try {
    artifact = await (options.artifact ?? readTagStateArtifact(target));
  } catch (err) {
    if (!isStoredDataProblem(err)) throw err;
    throw new KilnError('MANIFEST_INVALID', `the tag state of ${repository} is unreadable; not building on it`, { cause: err });
  }
  if (!artifact) return { rotationLayers: [] };
  const mine = options.key.publicKey;
  const root = predecessors(mine, artifact.rotations).at(-1) ?? mine;
  const trusted = applyRotations([root], artifact.rotations, repository).keys;
  const me = trusted.find((k) => k.id === mine.id);
  const now = me ? validAt(me, options.now) : { ok: false, detail: 'its rotation chain is broken' };
  if (!now.ok) {
    throw new KilnError('VALIDATION', `cannot sign the tag state of ${repository} with ${mine.name} now: ${now.detail}`, { hint: 'sign with the key the repository was rotated to' });
  }
  if (!artifact.state) return { rotationLayers: artifact.rotationLayers };
  const opened = openTagState(artifact.state, trusted, repository);
  if ('reason' in opened) {
    throw new KilnError('VALIDATION', `cannot extend the tag state of ${repository}: ${opened.reason} (this key did not sign it)`, {
      hint: 'sign with the key that signed this repository before, or rotate to this key with kiln rotate-key',
    });
  }
  return { previous: opened.state, rotationLayers: artifact.rotationLayers };
}

/** What the next tag state is made from. */
export interface TagStateUpdate {
  target: Target;
  key: SigningKey;
  repository: string;
  current: CurrentTagState;
  tag: string;
  digest: Digest;
  now: Date;
  ttlSeconds?: number;
}

/**
 * Prepares the next tag state of the repository, signed with `key`: `current.previous` with `tag` → `digest`,
 * version + 1, expiring `ttlSeconds` after `now`, the rotation statements kept. Its blob is stored now, which
 * nothing references yet; `commit` moves the `kiln-tag-state` tag to it. Signing stages it while the
 * signatures are written and commits once they are stored, so the tag state never names a failed signing.
 */
export async function stageTagState(options: TagStateUpdate): Promise<{ state: TagState; commit: () => Promise<void> }> {
  const { target, key, repository } = options;
  const previous = options.current.previous;
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
  // The artifact's empty config goes up now too, so committing is one manifest PUT.
  await Promise.all([putBytes(target, layer, bytes), putBytes(target, EMPTY_CONFIG, EMPTY_JSON)]);
  return { state, commit: () => writeTagStateArtifact(target, [layer, ...options.current.rotationLayers], state.version, { configStored: true }) };
}

/** Pushes the `kiln-tag-state` manifest over `layers` (blobs already stored): an artifact with an empty config. */
export async function writeTagStateArtifact(target: Target, layers: Descriptor[], version: number | undefined, options: { configStored?: boolean } = {}): Promise<void> {
  const config = EMPTY_CONFIG;
  if (!options.configStored) await putBytes(target, config, EMPTY_JSON);
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: TAG_STATE_MEDIA_TYPE,
    config,
    layers,
    ...(version !== undefined ? { annotations: { 'dev.kiln.tag-state.version': String(version) } } : {}),
  };
  await target.putManifest(parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OciManifest), TAG_STATE_TAG);
}

/** The version of a stored state whose signature is not checked (to label a rewritten artifact only). */
export function unverifiedVersion(stored: StoredTagState | undefined): number | undefined {
  return stored ? parseTagState(stored.bytes)?.version : undefined;
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
 * Checks that `tag` is bound to `digest` by the newest valid tag state of `repository` (`artifact`, as read, or
 * `problem` when it was unreadable): signed by one of `keys` (rotations applied) within its window, no older than
 * a version `cache` has seen (recording newer ones), not expired, and mapping the tag there.
 */
export async function checkTagBinding(options: {
  artifact: TagStateArtifact | undefined;
  problem?: string;
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
  if (options.problem !== undefined) {
    record('state', false, `the tag state is unreadable: ${options.problem}`);
    return result;
  }
  const stored = options.artifact?.state;
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
  record('state', true, `version ${state.version}, signed by ${opened.key.name}`);
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
