import { Readable } from 'node:stream';
import type { Descriptor } from '../oci/descriptor.js';
import { digestOf, type Digest } from '../oci/digest.js';
import { errorMessage, isKilnError, KilnError } from '../oci/errors.js';
import { parseManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import { readStreamLimited } from '../oci/stream-util.js';
import type { Target } from '../oci/target.js';
import { BUNDLE_MEDIA_TYPE } from './bundle.js';

/** Media type of a cosign signature layer: the simple-signing payload. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
/** Layer annotation holding the base64 signature over the layer's payload. */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** A signature payload or bundle larger than this is not read (cosign's are well under 10 KiB). */
export const MAX_SIGNATURE_BLOB_BYTES = 1024 * 1024;

/** One signature as found in storage, before any check: payload bytes and the base64 signature over them. */
export interface CosignSignature {
  /** Where it was found, for messages: `sha256-….sig layer 0`. */
  source: string;
  payload: Buffer;
  /** The annotation's value (base64 DER), as stored. */
  signature: string;
  /** Set instead of payload/signature being meaningful when the stored form is malformed. */
  problem?: string;
}

/** The cosign signature tag of `digest`: `sha256-<hex>.sig`. */
export function signatureTag(digest: Digest): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** True when `err` means "no such manifest": a registry's 404s, or a layout without the tag. */
export function isManifestAbsent(err: unknown): boolean {
  return isKilnError(err, 'MANIFEST_UNKNOWN', 'NOT_FOUND', 'NAME_UNKNOWN');
}

/**
 * True when `err` says stored signature data is missing, altered or oversized: such a signature fails its
 * checks (fail closed) rather than aborting verification; network and auth errors still abort.
 */
export function isStoredDataProblem(err: unknown): boolean {
  return isKilnError(err, 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'BLOB_UNKNOWN', 'NOT_FOUND', 'TOO_LARGE', 'MANIFEST_INVALID', 'MANIFEST_UNKNOWN');
}

/** The manifest tagged `tag`, or undefined when there is none. */
export async function getTagged(target: Target, tag: string): Promise<RawManifest | undefined> {
  try {
    return await target.getManifest(tag);
  } catch (err) {
    if (isManifestAbsent(err)) return undefined;
    throw err;
  }
}

/** The signature layers of a `.sig` manifest: each layer's descriptor and its signature annotation. */
export function signatureLayers(manifest: RawManifest): Array<{ desc: Descriptor; signature: string | undefined }> {
  if (manifest.kind !== 'manifest') return [];
  return manifest.parsed.layers.map((desc) => ({ desc, signature: desc.annotations?.[SIGNATURE_ANNOTATION] }));
}

/** Reads a small blob (a payload or bundle) through `target`, verified against its digest. */
export async function readSmallBlob(target: Target, desc: Descriptor): Promise<Buffer> {
  if (desc.size > MAX_SIGNATURE_BLOB_BYTES) {
    throw new KilnError('TOO_LARGE', `blob ${desc.digest} is ${desc.size} bytes, over the ${MAX_SIGNATURE_BLOB_BYTES}-byte limit for signature data`);
  }
  return readStreamLimited(await target.getBlob(desc), MAX_SIGNATURE_BLOB_BYTES, `blob ${desc.digest}`);
}

/**
 * The cosign signatures stored for `digest` under its `.sig` tag; undefined when there is no such tag.
 * A layer whose blob is missing, altered or malformed is returned with a `problem`, so it fails its checks.
 */
export async function readCosignSignatures(target: Target, digest: Digest): Promise<CosignSignature[] | undefined> {
  const tag = signatureTag(digest);
  const manifest = await getTagged(target, tag);
  if (!manifest) return undefined;
  const found: CosignSignature[] = [];
  for (const [i, { desc, signature }] of signatureLayers(manifest).entries()) {
    const source = `${tag} layer ${i}`;
    if (desc.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE) continue;
    if (signature === undefined) {
      found.push({ source, payload: Buffer.alloc(0), signature: '', problem: `no ${SIGNATURE_ANNOTATION} annotation` });
      continue;
    }
    try {
      found.push({ source, payload: await readSmallBlob(target, desc), signature });
    } catch (err) {
      if (!isStoredDataProblem(err)) throw err;
      found.push({ source, payload: Buffer.alloc(0), signature, problem: `payload ${desc.digest} unreadable: ${errorMessage(err)}` });
    }
  }
  return found;
}

/**
 * Adds one signature layer to the `.sig` manifest of `digest` (creating it), as cosign does: existing
 * layers are kept, the config's diff_ids and history follow the layers, and the same payload with
 * the same signature is not added twice.
 */
export async function appendCosignSignature(
  target: Target,
  digest: Digest,
  signature: { payload: Buffer; signature: string },
): Promise<{ tag: string; digest: Digest; appended: boolean }> {
  const tag = signatureTag(digest);
  const existing = await getTagged(target, tag);
  const layers = existing ? existingLayers(existing) : [];
  const layer: Descriptor = {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    size: signature.payload.length,
    digest: digestOf(signature.payload),
    annotations: { [SIGNATURE_ANNOTATION]: signature.signature },
  };
  if (existing && layers.some((l) => l.digest === layer.digest && l.annotations?.[SIGNATURE_ANNOTATION] === signature.signature)) {
    return { tag, digest: existing.digest, appended: false };
  }
  layers.push(layer);
  const config = signatureConfig(layers);
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, size: config.length, digest: digestOf(config) };
  await Promise.all([putBytes(target, layer, signature.payload), putBytes(target, configDesc, config)]);
  // Key order of go-containerregistry's structs: what cosign pushes.
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: configDesc.mediaType, size: configDesc.size, digest: configDesc.digest },
    layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.size, digest: l.digest, ...(l.annotations ? { annotations: l.annotations } : {}) })),
  };
  const manifest = parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OciManifest);
  await target.putManifest(manifest, tag);
  return { tag, digest: manifest.digest, appended: true };
}

/**
 * Uploads bytes already in memory as a blob (a factory, so a registry upload can retry). Signing writes small
 * blobs it has just made, so no existence check first: resending a few bytes costs less than the round trip.
 */
export async function putBytes(target: Target, desc: Descriptor, bytes: Buffer): Promise<void> {
  await target.putBlob(desc, async () => Readable.from([bytes]), { fresh: true });
}

function existingLayers(manifest: RawManifest): Descriptor[] {
  return manifest.kind === 'manifest' ? manifest.parsed.layers.map((l) => ({ ...l })) : [];
}

/** The config go-containerregistry's empty image gets from mutate.Append, one diff_id and history entry per layer. */
function signatureConfig(layers: Descriptor[]): Buffer {
  const history = layers.map(() => '{"created":"0001-01-01T00:00:00Z"}').join(',');
  const diffIds = layers.map((l) => JSON.stringify(l.digest)).join(',');
  return Buffer.from(`{"architecture":"","created":"0001-01-01T00:00:00Z","history":[${history}],"os":"","rootfs":{"type":"layers","diff_ids":[${diffIds}]},"config":{}}`);
}

/** A Sigstore bundle found as a referrer of an image, with the payload it signs. */
export interface BundleSignature {
  /** Where it was found, for messages: `bundle referrer sha256:…`. */
  source: string;
  bundle: Buffer;
  payload: Buffer;
  problem?: string;
}

/** The OCI empty descriptor's content (image-spec manifest.md § Guidance for an Empty Descriptor), and the descriptor. */
export const EMPTY_JSON = Buffer.from('{}');
export const EMPTY_CONFIG: Descriptor = { mediaType: MediaType.OciEmpty, size: EMPTY_JSON.length, digest: digestOf(EMPTY_JSON) };

/**
 * Stores `bundle` as an OCI 1.1 referrer of `subject`: artifactType the bundle media type, empty config,
 * layers [bundle, signed payload]. The target records it in the referrers tag schema where needed.
 */
export async function attachBundle(
  target: Target,
  subject: Descriptor,
  signed: { bundle: Buffer; payload: Buffer; created: Date },
): Promise<Digest> {
  const config = EMPTY_CONFIG;
  const bundleDesc: Descriptor = { mediaType: BUNDLE_MEDIA_TYPE, size: signed.bundle.length, digest: digestOf(signed.bundle) };
  const payloadDesc: Descriptor = { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, size: signed.payload.length, digest: digestOf(signed.payload) };
  // Independent uploads: concurrent, so their round trips overlap.
  await Promise.all([putBytes(target, config, EMPTY_JSON), putBytes(target, bundleDesc, signed.bundle), putBytes(target, payloadDesc, signed.payload)]);
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: BUNDLE_MEDIA_TYPE,
    config,
    layers: [bundleDesc, payloadDesc],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { 'dev.sigstore.bundle.content': 'message-signature', 'org.opencontainers.image.created': signed.created.toISOString() },
  };
  const manifest = parseManifest(Buffer.from(JSON.stringify(doc)), MediaType.OciManifest);
  await target.putManifest(manifest);
  return manifest.digest;
}

/** The bundles attached to `digest` as referrers; a referrer that is malformed or unreadable comes with a `problem`. */
export async function readBundleSignatures(target: Target, digest: Digest): Promise<BundleSignature[]> {
  const found: BundleSignature[] = [];
  for (const desc of await target.referrers(digest, { artifactType: BUNDLE_MEDIA_TYPE })) {
    const source = `bundle referrer ${desc.digest}`;
    const empty = Buffer.alloc(0);
    try {
      const manifest = await target.getManifest(desc.digest, desc.mediaType);
      // A referrers listing is only an index: the manifest itself must name this image as its subject.
      if (manifest.parsed.subject?.digest !== digest) {
        found.push({ source, bundle: empty, payload: empty, problem: `its subject is ${manifest.parsed.subject?.digest ?? 'missing'}, not ${digest}` });
        continue;
      }
      const layers = manifest.kind === 'manifest' ? manifest.parsed.layers : [];
      const bundleDesc = layers.find((l) => l.mediaType === BUNDLE_MEDIA_TYPE);
      const payloadDesc = layers.find((l) => l.mediaType === SIMPLE_SIGNING_MEDIA_TYPE);
      if (!bundleDesc || !payloadDesc) {
        found.push({ source, bundle: empty, payload: empty, problem: 'it lacks a bundle layer or a simple-signing payload layer' });
        continue;
      }
      found.push({ source, bundle: await readSmallBlob(target, bundleDesc), payload: await readSmallBlob(target, payloadDesc) });
    } catch (err) {
      if (!isStoredDataProblem(err)) throw err;
      found.push({ source, bundle: empty, payload: empty, problem: `unreadable: ${errorMessage(err)}` });
    }
  }
  return found;
}
