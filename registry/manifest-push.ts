import type { Request } from 'express';
import type { Descriptor } from '../oci/descriptor.js';
import { type Digest, digestAlgorithm, digestOf } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../oci/manifest.js';
import type { ManifestRecord, MetadataStore } from './db/metadata-store.js';
import { RegistryError } from './errors.js';
import { DRAIN_LIMIT } from './request-body.js';

/** A manifest accepted for storage: the record to write and what the response reports. */
export interface AcceptedManifest {
  raw: RawManifest;
  record: ManifestRecord;
}

/**
 * Reads a manifest PUT body, at most 4 MiB (§ Pushing Manifests: registries SHOULD accept at least
 * 4 MB and answer 413 over their limit). The connection is closed after a 413 rather than drained.
 */
export async function readManifestBody(req: Request): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  const chunks: Buffer[] = [];
  let total = 0;
  let refused = declared > MAX_MANIFEST_BYTES;
  // Events rather than `for await`: leaving that loop early destroys the request, and with it the socket
  // the 413 must go out on. A refused body is read to its end (up to DRAIN_LIMIT) so the client, still
  // sending, receives the answer instead of a reset connection.
  const drained = await new Promise<boolean>((resolve, reject) => {
    if (declared > DRAIN_LIMIT) return resolve(false);
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > MAX_MANIFEST_BYTES) refused = true;
      if (total > DRAIN_LIMIT) {
        req.pause();
        resolve(false);
      } else if (!refused) chunks.push(chunk);
    });
    req.once('end', () => resolve(true));
    req.once('error', reject);
  });
  if (refused) throw tooLarge(Number.isFinite(declared) ? declared : undefined, drained);
  return Buffer.concat(chunks);
}

/**
 * Validates a pushed manifest for `repository`: the document (parseManifest names the field), the
 * digest when pushed by digest, and that every blob or child manifest it references is in the
 * repository (§ Push: MANIFEST_BLOB_UNKNOWN), except `subject`, which may come later.
 */
export async function acceptManifest(
  metadata: MetadataStore,
  repository: string,
  bytes: Buffer,
  contentType: string | undefined,
  byDigest: Digest | undefined,
): Promise<AcceptedManifest> {
  const raw = parseManifest(bytes, contentType?.split(';')[0]?.trim(), 'manifest');
  let digest = raw.digest;
  if (byDigest !== undefined) {
    const actual = digestAlgorithm(byDigest) === 'sha256' ? raw.digest : digestOf(bytes, digestAlgorithm(byDigest));
    if (actual !== byDigest) {
      throw new RegistryError('DIGEST_INVALID', `the manifest has digest ${actual}, not the ${byDigest} it was pushed as`, { detail: { expected: byDigest, actual } });
    }
    digest = byDigest;
  }
  const missing = await missingReferences(metadata, repository, raw);
  if (missing.length > 0) {
    throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `the manifest references ${missing.length === 1 ? 'a blob or manifest' : `${missing.length} blobs or manifests`} not in ${repository}: ${missing.slice(0, 5).join(', ')}`, {
      detail: { digests: missing },
    });
  }
  const parsed = raw.parsed;
  const record: ManifestRecord = {
    repository,
    digest,
    mediaType: raw.mediaType,
    bytes,
    // § Listing Referrers: artifactType, else (image manifests only) the config media type.
    artifactType: parsed.artifactType ?? (raw.kind === 'manifest' ? raw.parsed.config.mediaType : undefined),
    subject: parsed.subject?.digest,
    annotations: parsed.annotations,
    blobs: raw.kind === 'manifest' ? [raw.parsed.config, ...raw.parsed.layers].map((d) => d.digest) : [],
    manifests: raw.kind === 'index' ? raw.parsed.manifests.map((d) => d.digest) : [],
    createdAt: Date.now(),
  };
  return { raw, record };
}

/** Digests the manifest names (config, layers, index entries; never `subject`) that the repository lacks. */
async function missingReferences(metadata: MetadataStore, repository: string, raw: RawManifest): Promise<Digest[]> {
  const children: Descriptor[] = raw.kind === 'manifest' ? [raw.parsed.config, ...raw.parsed.layers] : raw.parsed.manifests;
  const missing: Digest[] = [];
  for (const child of children) {
    // Foreign / non-distributable layers live at their `urls`, not in the registry (image-spec layer.md).
    if (child.urls !== undefined && child.urls.length > 0) continue;
    // An index entry is normally a manifest; an entry of another type may be a plain blob (image-index.md § manifests).
    if (raw.kind === 'index' && (await metadata.getManifest(repository, child.digest)) !== undefined) continue;
    if ((await metadata.blobSize(repository, child.digest)) !== undefined) continue;
    if (!missing.includes(child.digest)) missing.push(child.digest);
  }
  return missing;
}

function tooLarge(declared: number | undefined, drained: boolean): RegistryError {
  const size = declared === undefined ? 'over 4 MiB' : `${declared} bytes`;
  return new RegistryError('SIZE_INVALID', `the manifest is ${size}; this registry accepts manifests up to ${MAX_MANIFEST_BYTES} bytes`, {
    status: 413,
    // An undrained body would be read as the next request: the connection ends with the answer.
    headers: drained ? {} : { Connection: 'close' },
    detail: { limit: MAX_MANIFEST_BYTES },
  });
}
