import type { Digest } from '../oci/digest.js';
import { errorMessage, KilnError } from '../oci/errors.js';
import type { RawManifest } from '../oci/manifest.js';
import { formatRepository, parseRepository } from '../oci/reference.js';
import type { Target } from '../oci/target.js';
import { isManifestAbsent, isStoredDataProblem, readBundleSignatures, readCosignSignatures } from './attach.js';
import { applyRotations, type RotationCheck } from './key-rotation.js';
import type { PublicKey } from './keys.js';
import { signingIdentity } from './sign.js';
import { checkTagBinding, readTagStateArtifact, type TagBinding } from './tag-state.js';
import type { TrustCache } from './trust-cache.js';
import { mismatchMessage, verifyStoredSignatures, type IdentityMatcher, type SignatureVerdict } from './verify.js';

/** Why verification failed, as one of verify's exit-code errors (10, 11, 12). */
export interface VerifyFailure {
  code: 'SIGNATURE_NOT_FOUND' | 'TAG_NOT_FOUND' | 'SIGNATURE_MISMATCH';
  message: string;
}

/** The outcome of `verifyImage`: every signature's checks, and the failure when not ok. */
export interface VerifyReport {
  ok: boolean;
  image: string;
  identity: string;
  tag?: string;
  digest?: Digest;
  signatures: SignatureVerdict[];
  /** Set when a tag was verified: its binding in the repository's tag state. */
  tagBinding?: TagBinding;
  /** Set when the repository holds key rotation statements: which ones extended the trusted keys. */
  rotations?: RotationCheck[];
  failure?: VerifyFailure;
}

/** Options of `verifyImage`. */
export interface VerifyImageOptions {
  target: Target;
  keys: readonly PublicKey[];
  /** `registry/repository` signatures must name (a mirror's origin, say); defaults to the target's (required for OCI layouts). */
  identity?: string;
  /** A policy's signedIdentity rule, replacing the comparison with `identity`. */
  matchIdentity?: IdentityMatcher;
  maxAgeSeconds?: number;
  /** Check the tag against the repository's signed tag state (default true; only when a tag is verified). */
  tagBinding?: boolean;
  /** Tag-state versions seen before; required for tag binding. */
  trustCache?: TrustCache;
  now?: Date;
}

/**
 * Verifies the image `target` names, offline apart from reading the target: finds its cosign `.sig`
 * signatures and bundle referrers and checks each (crypto, payload, digest, identity, age), then, for a
 * tag, its binding in the signed tag state. Ok only when a signature from a trusted key passes every
 * check and the tag is bound to the digest; never ok on error.
 */
export async function verifyImage(options: VerifyImageOptions): Promise<VerifyReport> {
  const { target } = options;
  if (options.keys.length === 0) throw new KilnError('USAGE', 'no trusted key to verify with', { hint: 'pass --key cosign.pub' });
  // Unlike signing, verifying for another repository than the image's own is legitimate: a mirror.
  const identity = options.identity !== undefined ? formatRepository(parseRepository(options.identity)) : signingIdentity(target, undefined);
  const report: VerifyReport = { ok: false, image: target.description, identity, signatures: [] };
  const tag = target.ref.digest === undefined ? target.ref.tag : undefined;
  if (tag !== undefined) report.tag = tag;
  let image: RawManifest;
  try {
    image = await target.resolve();
  } catch (err) {
    if (!isManifestAbsent(err)) throw err;
    return fail(report, 'TAG_NOT_FOUND', `${target.description}: no such ${tag !== undefined ? 'tag' : 'image'}`);
  }
  report.digest = image.digest;
  // The three reads are independent: issued together, they cost one round trip's latency, not three.
  const [cosignFound, bundles, stateRead] = await Promise.all([
    readCosignSignatures(target, image.digest),
    readBundleSignatures(target, image.digest),
    // Rotation statements live with the tag state, so it is read for verification by digest too.
    readTagStateArtifact(target).then(
      (artifact) => ({ artifact, problem: undefined }),
      (err: unknown) => {
        if (!isStoredDataProblem(err)) throw err;
        return { artifact: undefined, problem: errorMessage(err) };
      },
    ),
  ]);
  const cosign = cosignFound ?? [];
  if (cosign.length === 0 && bundles.length === 0) {
    return fail(report, 'SIGNATURE_NOT_FOUND', `${target.description} (${image.digest}) has no signatures`);
  }
  const { artifact, problem } = stateRead;
  const rotated = applyRotations(options.keys, artifact?.rotations ?? [], identity);
  if (rotated.rotations.length > 0) report.rotations = rotated.rotations;
  const keys = rotated.keys;
  const policy = { keys, repository: identity, matchIdentity: options.matchIdentity, maxAgeSeconds: options.maxAgeSeconds, now: options.now };
  report.signatures = await verifyStoredSignatures({ digest: image.digest, cosign, bundles, policy });
  if (!report.signatures.some((s) => s.ok)) {
    return fail(report, 'SIGNATURE_MISMATCH', `no matching signature for ${target.description}: ${mismatchMessage(report.signatures)}`);
  }
  if (tag !== undefined && options.tagBinding !== false) {
    if (!options.trustCache) throw new KilnError('INTERNAL', 'tag binding needs a trust cache');
    const binding = await checkTagBinding({ artifact, problem, keys, repository: identity, tag, digest: image.digest, cache: options.trustCache, now: options.now });
    report.tagBinding = binding;
    const failed = binding.checks.find((c) => !c.ok);
    if (failed) return fail(report, 'SIGNATURE_MISMATCH', `tag binding failed for ${target.description}: ${failed.check} check failed: ${failed.detail}`);
  }
  report.ok = true;
  return report;
}

/** Throws the report's failure as a KilnError (exit 10, 11 or 12 in the CLI); returns when it is ok. */
export function assertVerified(report: VerifyReport): void {
  if (report.ok) return;
  const failure = report.failure ?? { code: 'SIGNATURE_MISMATCH', message: `${report.image}: not verified` };
  throw new KilnError(failure.code, failure.message, { detail: report });
}

function fail(report: VerifyReport, code: VerifyFailure['code'], message: string): VerifyReport {
  report.ok = false;
  report.failure = { code, message };
  return report;
}
