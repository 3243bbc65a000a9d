import type { Descriptor } from '../descriptor.js';
import { digestAlgorithm, digestOf, isDigest, parseDigest, type Digest } from '../digest.js';
import { KilnError } from '../errors.js';
import { MAX_MANIFEST_BYTES, parseManifest, type RawManifest } from '../manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../media-types.js';
import { discard, readLimited } from './body.js';
import { errorFromBody, registryError } from './errors.js';
import { repositoryScope, type RepositoryAccess } from './scope.js';
import type { Transport } from './transport.js';
import type { HttpResponse } from './http.js';

/** The bytes and media type of a manifest to push: its digest is the digest of exactly these bytes. */
export interface ManifestUpload {
  bytes: Uint8Array;
  mediaType: string;
}

/** What a manifest PUT returns. */
export interface PutManifestResult {
  digest: Digest;
  /** The `OCI-Subject` response header: set when the registry indexed the manifest's subject (referrers API). */
  subject?: Digest;
}

/** Options of a manifest GET. */
export interface GetManifestOptions {
  /** Accept header media types (default: OCI index and manifest, Docker list and manifest). */
  accept?: readonly string[];
  /** Access to request the token for: `push` when reading before a write saves a second token. */
  access?: RepositoryAccess;
}

/** `repo:tag` or `repo@digest`, as messages name a manifest. */
export function manifestName(repository: string, reference: string): string {
  return isDigest(reference) ? `${repository}@${reference}` : `${repository}:${reference}`;
}

function manifestPath(repository: string, reference: string): string {
  return `/v2/${repository}/manifests/${encodeURIComponent(reference)}`;
}

function bareMediaType(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]?.trim() ?? '';
}

function headerDigest(res: HttpResponse, registry: string, what: string): Digest | undefined {
  const value = res.headers.get('docker-content-digest');
  if (!value) return undefined;
  try {
    return parseDigest(value);
  } catch (err) {
    throw new KilnError('REGISTRY', `registry ${registry} sent an invalid Docker-Content-Digest for ${what}`, { cause: err });
  }
}

/** HEAD of a manifest: its descriptor, or undefined when the registry has none under `reference`. */
export async function headManifest(t: Transport, repository: string, reference: string): Promise<Descriptor | undefined> {
  const object = `manifest ${manifestName(repository, reference)}`;
  const res = await t.request({
    method: 'HEAD',
    url: manifestPath(repository, reference),
    headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') },
    scopes: [repositoryScope(repository, 'pull')],
    repository,
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw errorFromBody(res.status, res.statusText, '', { registry: t.registry, object, notFound: 'MANIFEST_UNKNOWN' });
  const digest = headerDigest(res, t.registry, object);
  const size = Number(res.headers.get('content-length') ?? NaN);
  const mediaType = bareMediaType(res.headers.get('content-type'));
  if (digest && Number.isSafeInteger(size) && mediaType) return { mediaType, digest, size };
  // Some registries omit the digest or length on HEAD: the GET answers with verified bytes.
  const got = await getManifest(t, repository, reference);
  return { mediaType: got.mediaType, digest: got.digest, size: got.bytes.length };
}

/**
 * GET of a manifest by tag or digest. By digest, the bytes must hash to it; by tag, they must
 * match the Docker-Content-Digest header when the registry sends one.
 */
export async function getManifest(t: Transport, repository: string, reference: string, options: GetManifestOptions = {}): Promise<RawManifest> {
  const object = `manifest ${manifestName(repository, reference)}`;
  const res = await t.request({
    method: 'GET',
    url: manifestPath(repository, reference),
    headers: { accept: (options.accept ?? MANIFEST_MEDIA_TYPES).join(', ') },
    scopes: [repositoryScope(repository, options.access ?? 'pull')],
    repository,
  });
  if (res.status !== 200) throw await registryError(res, { registry: t.registry, object, notFound: 'MANIFEST_UNKNOWN' });
  const bytes = await readLimited(res, MAX_MANIFEST_BYTES, `${object} from ${t.registry}`);
  const expected = isDigest(reference) ? reference : headerDigest(res, t.registry, object);
  if (expected) {
    const actual = digestOf(bytes, digestAlgorithm(expected));
    if (actual !== expected) {
      throw new KilnError('DIGEST_MISMATCH', `${object} from ${t.registry} has digest ${actual}, expected ${expected} (corrupt or tampered data)`);
    }
  }
  return parseManifest(bytes, bareMediaType(res.headers.get('content-type')), `${object} from ${t.registry}`);
}

/** PUT of a manifest under a tag or its digest, with its own media type as Content-Type and its exact bytes. */
export async function putManifest(t: Transport, repository: string, reference: string, manifest: ManifestUpload): Promise<PutManifestResult> {
  const object = `manifest ${manifestName(repository, reference)}`;
  const digest = digestOf(manifest.bytes);
  if (isDigest(reference) && digestOf(manifest.bytes, digestAlgorithm(reference)) !== reference) {
    throw new KilnError('DIGEST_MISMATCH', `${object}: the bytes to push have digest ${digest}, not ${reference}`);
  }
  const res = await t.request({
    method: 'PUT',
    url: manifestPath(repository, reference),
    headers: { 'content-type': manifest.mediaType },
    body: manifest.bytes,
    scopes: [repositoryScope(repository, 'push')],
    repository,
  });
  if (res.status < 200 || res.status > 299) throw await registryError(res, { registry: t.registry, object });
  await discard(res);
  const stored = headerDigest(res, t.registry, object);
  if (stored && digestAlgorithm(stored) === 'sha256' && stored !== digest) {
    // A registry that re-serialised the manifest would break every signature made over our digest.
    throw new KilnError('DIGEST_MISMATCH', `registry ${t.registry} stored ${object} as ${stored}, but its bytes have digest ${digest}`);
  }
  const subjectHeader = res.headers.get('oci-subject');
  const result: PutManifestResult = { digest };
  if (subjectHeader && isDigest(subjectHeader)) result.subject = subjectHeader;
  return result;
}

/** DELETE of a manifest by digest (distribution-spec § Deleting manifests). */
export async function deleteManifest(t: Transport, repository: string, digest: Digest): Promise<void> {
  const object = `deletion of manifest ${manifestName(repository, digest)}`;
  const res = await t.request({
    method: 'DELETE',
    url: manifestPath(repository, digest),
    scopes: [repositoryScope(repository, 'delete')],
    repository,
  });
  if (res.status !== 202 && res.status !== 200 && res.status !== 204) {
    throw await registryError(res, { registry: t.registry, object, notFound: 'MANIFEST_UNKNOWN' });
  }
  await discard(res);
}
