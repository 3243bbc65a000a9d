import type { Digest } from '../oci/digest.js';
import { KilnError } from '../oci/errors.js';
import { manifestDescriptor, type RawManifest } from '../oci/manifest.js';
import { isManifestMediaType } from '../oci/media-types.js';
import { formatRepository, parseRepository } from '../oci/reference.js';
import type { Target } from '../oci/target.js';
import { appendCosignSignature, attachBundle } from './attach.js';
import { buildBundle } from './bundle.js';
import { signBytes, type SigningKey } from './keys.js';
import { buildPayload, RESERVED_OPTIONAL_KEYS } from './payload.js';
import { currentTagState, readTagStateArtifact, stageTagState, type TagStateArtifact } from './tag-state.js';

/** Options of `signImage`. */
export interface SignOptions {
  target: Target;
  key: SigningKey;
  /** `-a k=v` claims, written into the payload's `optional`. */
  annotations?: Record<string, string>;
  /** On an index, also sign each manifest it lists. */
  recursive?: boolean;
  /** `registry/repository` to sign for; required for targets without one (OCI layouts). */
  identity?: string;
  /** Also attach a Sigstore bundle referrer (default true). */
  bundle?: boolean;
  /** Record a signed tag in the repository's tag state (default true). */
  tagState?: boolean;
  /** Lifetime of the new tag state (default 30 days). */
  tagStateTtlSeconds?: number;
  now?: Date;
  /** Reads already under way (`prefetchSigning`), started before the key was decrypted. */
  prefetched?: SigningPrefetch;
}

/** The reads a signing needs before it needs the key. */
export interface SigningPrefetch {
  root: Promise<RawManifest>;
  tagState: Promise<TagStateArtifact | undefined>;
}

/**
 * Starts the reads of signing `target` that do not need the key (the image, the tag state), so they overlap
 * the key's decryption (scrypt runs on the thread pool). Failures surface when signImage awaits them.
 */
export function prefetchSigning(target: Target, options: { tagState?: boolean } = {}): SigningPrefetch {
  const recordsTag = signedTag(target) !== undefined && options.tagState !== false;
  const prefetch: SigningPrefetch = { root: target.resolve(), tagState: recordsTag ? readTagStateArtifact(target) : Promise.resolve(undefined) };
  // Handled here so a read that fails while the key is still decrypting is not an unhandled rejection.
  prefetch.root.catch(() => undefined);
  prefetch.tagState.catch(() => undefined);
  return prefetch;
}

/** What was signed and where the signatures went. */
export interface SignResult {
  image: string;
  identity: string;
  /** The tag that was resolved, when the image was named by tag. */
  tag?: string;
  digest: Digest;
  signed: Array<{ digest: Digest; signatureTag: string; signatureManifest: Digest; bundle?: Digest }>;
  /** The tag state written when a tag was signed. */
  tagState?: { version: number; expires: string };
}

/**
 * Signs the image `target` names (resolving a tag to the digest it points to now): a cosign signature
 * appended under `sha256-<hex>.sig` and a Sigstore bundle referrer; with `recursive`, each manifest of an
 * index too. A signed tag is then recorded in the repository's tag state (the next version, re-signed).
 */
export async function signImage(options: SignOptions): Promise<SignResult> {
  const { target } = options;
  const identity = signingIdentity(target, options.identity);
  for (const key of Object.keys(options.annotations ?? {})) {
    if ((RESERVED_OPTIONAL_KEYS as readonly string[]).includes(key)) {
      throw new KilnError('USAGE', `annotation "${key}" is reserved: Kiln writes optional.${key} itself`);
    }
  }
  const root = await (options.prefetched?.root ?? target.resolve());
  const tag = signedTag(target);
  const recordTag = tag !== undefined && options.tagState !== false;
  // Checked before anything is written: a state this key cannot extend must not leave half a signing behind.
  const now = options.now ?? new Date();
  const current = recordTag
    ? await currentTagState({ target, key: options.key, repository: identity, now, artifact: options.prefetched?.tagState })
    : undefined;
  const images: RawManifest[] = [root];
  if (options.recursive && root.kind === 'index') {
    for (const child of root.parsed.manifests) {
      if (isManifestMediaType(child.mediaType)) images.push(await target.getManifest(child.digest, child.mediaType));
    }
  }
  // The next tag state's blobs go up beside the signatures; its tag moves only once they are stored.
  const staged = current && tag !== undefined
    ? stageTagState({ target, key: options.key, repository: identity, current, tag, digest: root.digest, now, ttlSeconds: options.tagStateTtlSeconds })
    : undefined;
  staged?.catch(() => undefined);
  const signed: SignResult['signed'] = [];
  for (const image of images) {
    const payload = buildPayload({
      dockerReference: identity,
      manifestDigest: image.digest,
      annotations: options.annotations,
      tag: image === root ? tag : undefined,
      timestamp: Math.floor(now.getTime() / 1000),
    });
    const signature = signBytes(options.key, payload).toString('base64');
    // The .sig manifest and the bundle referrer are independent writes: made concurrently, they overlap round trips.
    const [stored, bundle] = await Promise.all([
      appendCosignSignature(target, image.digest, { payload, signature }),
      options.bundle === false
        ? undefined
        : buildBundle(options.key, payload).then((b) => attachBundle(target, manifestDescriptor(image), { bundle: b, payload, created: now })),
    ]);
    const entry: SignResult['signed'][number] = { digest: image.digest, signatureTag: stored.tag, signatureManifest: stored.digest };
    if (bundle !== undefined) entry.bundle = bundle;
    signed.push(entry);
  }
  const result: SignResult = { image: target.description, identity, digest: root.digest, signed };
  if (tag !== undefined) result.tag = tag;
  if (staged) {
    const { state, commit } = await staged;
    await commit();
    result.tagState = { version: state.version, expires: state.expires };
  }
  return result;
}

/** The tag a signing resolves (and records in the tag state): none when the image is named by digest. */
function signedTag(target: Target): string | undefined {
  return target.ref.digest === undefined ? target.ref.tag : undefined;
}

/** The repository a signature names: the target's own, or `identity` for targets without one (which must agree). */
export function signingIdentity(target: Target, identity: string | undefined): string {
  const own = target.origin ? formatRepository(target.origin) : undefined;
  if (identity !== undefined) identity = formatRepository(parseRepository(identity));
  if (own !== undefined && identity !== undefined && identity !== own) {
    throw new KilnError('USAGE', `--identity ${identity} differs from the image's repository ${own}`);
  }
  const chosen = own ?? identity;
  if (chosen === undefined) {
    throw new KilnError('USAGE', `${target.description} has no repository name to sign or verify for`, {
      hint: 'pass --identity REGISTRY/REPOSITORY (the repository the image is published as)',
    });
  }
  return chosen;
}
