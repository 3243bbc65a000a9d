import { createHash } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { Signer } from '@sigstore/sign';
import type { TrustMaterial } from '@sigstore/verify';
import { errorMessage } from '../oci/errors.js';
import { publicKeyToPem, signBytes, type PublicKey, type SigningKey } from './keys.js';

/** Media type (and OCI artifactType) of a Sigstore bundle v0.3 (@sigstore/bundle's BUNDLE_V03_MEDIA_TYPE). */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

/**
 * The sigstore libraries, loaded on first use: they cost start-up time that every other command would
 * pay. Signing loads @sigstore/bundle and @sigstore/sign's bundle builders, verifying @sigstore/bundle and
 * @sigstore/verify.
 */
type BundleBuilders = Pick<typeof import('@sigstore/sign'), 'MessageSignatureBundleBuilder'>;
let signLibraries: Promise<[typeof import('@sigstore/bundle'), BundleBuilders]> | undefined;
let verifyLibraries: Promise<[typeof import('@sigstore/bundle'), typeof import('@sigstore/verify')]> | undefined;
function sigstoreSign(): NonNullable<typeof signLibraries> {
  signLibraries ??= Promise.all([import('@sigstore/bundle'), bundleBuilders()]);
  return signLibraries;
}
/**
 * @sigstore/sign's bundle builders without the rest of the package: its index also loads the Fulcio, Rekor
 * and TSA clients (make-fetch-happen, cacache: ~0.1 s) that offline signing with a local key never uses.
 * The package has no `exports` map, so the module is reachable; if a release moves it, the index still works.
 */
async function bundleBuilders(): Promise<BundleBuilders> {
  try {
    // CommonJS: Node names its exports, and so does the bundle (scripts/bundle.mjs keeps them).
    const mod = (await import('@sigstore/sign/dist/bundler/message.js')) as Partial<BundleBuilders>;
    if (typeof mod.MessageSignatureBundleBuilder === 'function') return { MessageSignatureBundleBuilder: mod.MessageSignatureBundleBuilder };
  } catch {
    // Moved in this release: the package index below has it.
  }
  return import('@sigstore/sign');
}
/** Starts loading the signing libraries now (e.g. while scrypt decrypts the key on the thread pool). */
export function preloadSigning(): void {
  sigstoreSign().catch(() => undefined);
}
/** Starts loading the verifying libraries now (e.g. while the first registry requests are under way). */
export function preloadVerifying(): void {
  sigstoreVerify().catch(() => undefined);
}
function sigstoreVerify(): NonNullable<typeof verifyLibraries> {
  verifyLibraries ??= Promise.all([import('@sigstore/bundle'), import('@sigstore/verify')]);
  return verifyLibraries;
}

/** The key hint a bundle carries: base64 of the SHA-256 of the PKIX public key, as cosign and sigstore-go write it. */
export function keyHint(key: PublicKey): string {
  return createHash('sha256').update(key.key.export({ format: 'der', type: 'spki' })).digest('base64');
}

/** A @sigstore/sign `Signer` over a local key: no Fulcio certificate, the public key named by its hint. */
export function localKeySigner(key: SigningKey): Signer {
  return {
    sign: async (data: Buffer) => ({
      signature: signBytes(key, data),
      key: { $case: 'publicKey', publicKey: publicKeyToPem(key.publicKey.key), hint: keyHint(key.publicKey) },
    }),
  };
}

/**
 * A Sigstore bundle (message signature) over `payload`, signed with the local key; no transparency log
 * or timestamp witnesses, so nothing leaves the machine. Returns the bundle's JSON bytes.
 */
export async function buildBundle(key: SigningKey, payload: Buffer): Promise<Buffer> {
  const [bundles, { MessageSignatureBundleBuilder }] = await sigstoreSign();
  const builder = new MessageSignatureBundleBuilder({ signer: localKeySigner(key), witnesses: [] });
  const bundle = await builder.create({ data: payload });
  // The builder labels every bundle v0.2 (it would carry a certificate chain). With a public key and no
  // transparency-log entries a v0.2 and a v0.3 bundle are the same document; v0.3 is what cosign now stores.
  bundle.mediaType = BUNDLE_MEDIA_TYPE;
  const assertLatest: (b: Bundle) => void = bundles.assertBundleLatest;
  assertLatest(bundle);
  return Buffer.from(JSON.stringify(bundles.bundleToJSON(bundle)), 'utf8');
}

/**
 * Verifies a bundle over `payload` offline with @sigstore/verify: trust material made of `keys` only,
 * every transparency-log and timestamp threshold 0. Returns the key that verified it, or why none did.
 */
export async function verifyBundle(bundleJson: Buffer, payload: Buffer, keys: readonly PublicKey[]): Promise<{ key: PublicKey } | { reason: string }> {
  const [{ bundleFromJSON }, { toSignedEntity, Verifier }] = await sigstoreVerify();
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(JSON.parse(bundleJson.toString('utf8')));
  } catch (err) {
    return { reason: `not a valid Sigstore bundle: ${errorMessage(err)}` };
  }
  if (bundle.content.$case !== 'messageSignature') return { reason: `bundle holds a ${bundle.content.$case}, expected a message signature` };
  const digest = bundle.content.messageSignature.messageDigest;
  if (digest && !createHash('sha256').update(payload).digest().equals(Buffer.from(digest.digest))) {
    return { reason: 'the bundle’s message digest is not the SHA-256 of the payload' };
  }
  let last = 'no trusted key';
  for (const key of keys) {
    try {
      // The key is looked up by us, not by the bundle's hint: a hint is a label, never a source of trust.
      new Verifier(trustMaterial(key), { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle, payload));
      return { key };
    } catch (err) {
      last = errorMessage(err);
    }
  }
  return { reason: `signature does not verify with ${keys.map((k) => k.name).join(', ')} (${last})` };
}

function trustMaterial(key: PublicKey): TrustMaterial {
  return {
    certificateAuthorities: [],
    timestampAuthorities: [],
    tlogs: [],
    ctlogs: [],
    // Validity windows are enforced by Kiln (policy), so the key is valid whenever @sigstore/verify asks.
    publicKey: () => ({ publicKey: key.key, validFor: () => true }),
  };
}
