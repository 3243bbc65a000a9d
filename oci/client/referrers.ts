import type { Descriptor } from '../descriptor.js';
import { digestAlgorithm, digestHex, isDigest, type Digest } from '../digest.js';
import { isKilnError, KilnError } from '../errors.js';
import { MAX_MANIFEST_BYTES, type RawManifest } from '../manifest.js';
import { MediaType } from '../media-types.js';
import { discard, readJson } from './body.js';
import { registryError } from './errors.js';
import { getManifest, putManifest } from './manifests.js';
import { repositoryScope } from './scope.js';
import type { Transport } from './transport.js';

/** Filter of a referrers listing. */
export interface ReferrersFilter {
  artifactType?: string;
}

/** The referrers tag schema's tag for `subject`: `<alg>-<hex>` (distribution-spec § Referrers Tag Schema). */
export function referrersTag(subject: Digest): string {
  return `${digestAlgorithm(subject)}-${digestHex(subject)}`;
}

/**
 * The descriptor a referrers index lists for `manifest`: its artifactType, else (for an image
 * manifest) its config media type, and its annotations (distribution-spec § Listing Referrers).
 */
export function referrerDescriptor(manifest: RawManifest): Descriptor {
  const desc: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.length };
  const parsed = manifest.parsed;
  const artifactType = parsed.artifactType ?? (manifest.kind === 'manifest' ? manifest.parsed.config.mediaType : undefined);
  if (artifactType !== undefined) desc.artifactType = artifactType;
  if (parsed.annotations !== undefined) desc.annotations = parsed.annotations;
  return desc;
}

function isDescriptorLike(value: unknown): value is Descriptor {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Record<string, unknown>;
  return typeof d.mediaType === 'string' && isDigest(d.digest) && typeof d.size === 'number';
}

function descriptorsOf(doc: unknown, what: string): Descriptor[] {
  const manifests = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).manifests : undefined;
  if (manifests === undefined || manifests === null) return [];
  if (!Array.isArray(manifests) || !manifests.every(isDescriptorLike)) {
    throw new KilnError('MANIFEST_INVALID', `${what} is not an image index of descriptors`);
  }
  return manifests;
}

function filtered(list: Descriptor[], filter: ReferrersFilter): Descriptor[] {
  return filter.artifactType === undefined ? list : list.filter((d) => d.artifactType === filter.artifactType);
}

/**
 * Manifests whose subject is `subject`: the referrers API (GET /v2/NAME/referrers/DIGEST), or,
 * when the registry answers 404 (no API), the index under the referrers tag schema.
 */
export async function listReferrers(t: Transport, repository: string, subject: Digest, filter: ReferrersFilter = {}): Promise<Descriptor[]> {
  const url = t.url(`/v2/${repository}/referrers/${subject}`);
  if (filter.artifactType !== undefined) url.searchParams.set('artifactType', filter.artifactType);
  const res = await t.request({ method: 'GET', url, headers: { accept: MediaType.OciIndex }, scopes: [repositoryScope(repository, 'pull')], repository });
  const what = `referrers of ${repository}@${subject}`;
  if (res.status === 404) {
    await discard(res);
    return filtered(await fallbackReferrers(t, repository, subject), filter);
  }
  if (res.status !== 200) throw await registryError(res, { registry: t.registry, object: what });
  // A registry that did not apply the filter says so by leaving it out of OCI-Filters-Applied.
  const applied = (res.headers.get('oci-filters-applied') ?? '').split(',').map((s) => s.trim());
  const list = descriptorsOf(await readJson(res, MAX_MANIFEST_BYTES, `${what} from ${t.registry}`), `${what} from ${t.registry}`);
  return applied.includes('artifactType') ? list : filtered(list, filter);
}

async function readFallbackIndex(t: Transport, repository: string, subject: Digest, access: 'pull' | 'push'): Promise<Descriptor[]> {
  const tag = referrersTag(subject);
  let index: RawManifest;
  try {
    index = await getManifest(t, repository, tag, { access });
  } catch (err) {
    if (isKilnError(err, 'MANIFEST_UNKNOWN', 'NOT_FOUND')) return [];
    throw err;
  }
  if (index.kind !== 'index') {
    throw new KilnError('MANIFEST_INVALID', `tag ${repository}:${tag} on ${t.registry} should hold the referrers index of ${subject} but holds an image manifest`);
  }
  return index.parsed.manifests;
}

/** The referrers recorded under the tag schema for `subject` (empty when the tag does not exist). */
export async function fallbackReferrers(t: Transport, repository: string, subject: Digest): Promise<Descriptor[]> {
  return readFallbackIndex(t, repository, subject, 'pull');
}

/**
 * Adds `referrer` to the tag-schema index of `subject` (read-modify-write of the `<alg>-<hex>` tag),
 * for registries without the referrers API. Concurrent writers can lose an entry: the spec accepts it.
 */
export async function addFallbackReferrer(t: Transport, repository: string, subject: Digest, referrer: Descriptor): Promise<void> {
  const existing = await readFallbackIndex(t, repository, subject, 'push');
  if (existing.some((d) => d.digest === referrer.digest)) return;
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [...existing, referrer] };
  const bytes = Buffer.from(JSON.stringify(index), 'utf8');
  await putManifest(t, repository, referrersTag(subject), { bytes, mediaType: MediaType.OciIndex });
}
