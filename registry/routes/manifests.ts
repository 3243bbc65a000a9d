import type { Digest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import type { AreaRoutes, RegistryReader, RouteContext } from '../context.js';
import { RegistryError } from '../errors.js';
import type { CachedManifest } from '../manifest-cache.js';
import { acceptManifest, readManifestBody } from '../manifest-push.js';
import { type ManifestReference, parseManifestReference, shown } from '../routing.js';

type ManifestRoute = { area: 'manifests'; name: string; reference: string };

/** Manifests by tag or digest (distribution-spec § Pulling manifests, § Pushing Manifests, § Deleting tags / Manifests). */
export const manifestRoutes: AreaRoutes<'manifests'> = {
  GET: { actions: ['pull'], handle: (ctx, route) => serveManifest(ctx, route, true) },
  HEAD: { actions: ['pull'], handle: (ctx, route) => serveManifest(ctx, route, false) },
  PUT: { actions: ['pull', 'push'], handle: putManifest },
  DELETE: { actions: ['delete'], handle: deleteManifest },
};

async function serveManifest(ctx: RouteContext, route: ManifestRoute, withBody: boolean): Promise<void> {
  const { req, res } = ctx;
  const ref = parseManifestReference(route.reference);
  const manifest = await findManifest(ctx, route.name, ref, route.reference);
  if (ctx.admit) {
    await ctx.admit(parseManifest(manifest.bytes, manifest.mediaType, 'manifest'), route.name, ref.kind === 'tag' ? ref.tag : undefined, { action: 'pull', reader: readerOf(ctx) });
  }
  // Distribution answers 404 when the stored type is not acceptable and cannot be converted (content-negotiation.md).
  if (!acceptable(req.headers.accept, manifest.mediaType)) {
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${route.reference} is a ${manifest.mediaType}, which the Accept header does not allow`, {
      detail: { mediaType: manifest.mediaType },
    });
  }
  res.setHeader('Content-Type', manifest.mediaType);
  res.setHeader('Docker-Content-Digest', manifest.digest);
  res.setHeader('ETag', `"${manifest.digest}"`);
  if (req.headers['if-none-match'] === `"${manifest.digest}"`) {
    res.status(304).end();
    return;
  }
  res.setHeader('Content-Length', String(manifest.bytes.length));
  res.status(200);
  if (withBody) res.end(manifest.bytes);
  else res.end();
}

/** The registry's content, read-only, for admission hooks. */
function readerOf(ctx: RouteContext): RegistryReader {
  const { metadata, blobs } = ctx;
  return {
    resolveTag: (repository, tag) => metadata.resolveTag(repository, tag),
    getManifest: (repository, digest) => metadata.getManifest(repository, digest),
    blobSize: (repository, digest) => metadata.blobSize(repository, digest),
    getBlob: (digest) => blobs.get(digest),
    listReferrers: (repository, subject, artifactType) => metadata.listReferrers(repository, subject, artifactType),
    listTags: (repository) => metadata.listTags(repository),
  };
}

/** Looks a manifest up through the cache; an invalid tag cannot exist, so it is 404 (not 400) as the conformance suite expects. */
async function findManifest(ctx: RouteContext, name: string, ref: ManifestReference, text: string): Promise<CachedManifest> {
  const unknown = (): RegistryError => new RegistryError('MANIFEST_UNKNOWN', `manifest ${shown(text)} is not in repository ${name}`, { detail: { reference: text.slice(0, 200) } });
  if (ref.kind === 'tag' && !ref.valid) throw unknown();
  const key = ref.kind === 'tag' ? ref.tag : ref.digest;
  const cached = ctx.cache?.get(name, key);
  if (cached) return cached;
  const generation = ctx.cache?.generation(name) ?? 0;
  const digest = ref.kind === 'tag' ? await ctx.metadata.resolveTag(name, ref.tag) : ref.digest;
  const record = digest === undefined ? undefined : await ctx.metadata.getManifest(name, digest);
  if (!record) throw unknown();
  const found: CachedManifest = { digest: record.digest, mediaType: record.mediaType, bytes: record.bytes };
  ctx.cache?.set(name, key, found, generation);
  return found;
}

async function putManifest(ctx: RouteContext, route: ManifestRoute): Promise<void> {
  const { req, res, metadata, name } = { ...ctx, name: route.name };
  const ref = parseManifestReference(route.reference);
  if (ref.kind === 'tag' && !ref.valid) {
    // The spec defines no TAG_INVALID (CNCF Distribution's own code): the pushed manifest is what is invalid.
    throw new RegistryError('MANIFEST_INVALID', `invalid tag ${shown(ref.tag)}: up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"`, {
      detail: { tag: ref.tag.slice(0, 200) },
    });
  }
  const bytes = await readManifestBody(req);
  const byDigest: Digest | undefined = ref.kind === 'digest' ? ref.digest : undefined;
  const tag = ref.kind === 'tag' ? ref.tag : undefined;
  const { raw, record } = await acceptManifest(metadata, name, bytes, req.headers['content-type'], byDigest);
  if (ctx.admit) await ctx.admit(raw, name, tag, { action: 'push', reader: readerOf(ctx) });
  await ctx.policy?.beforeManifest(name, { digest: record.digest, size: bytes.length }, tag);
  await metadata.putManifest(record, tag);
  ctx.cache?.invalidate(name);
  res.status(201);
  res.setHeader('Location', `/v2/${name}/manifests/${record.digest}`);
  res.setHeader('Docker-Content-Digest', record.digest);
  // § Pushing Manifests with Subject: tells the client the registry indexed the subject (no tag-schema update needed).
  if (record.subject !== undefined) res.setHeader('OCI-Subject', record.subject);
  res.setHeader('Content-Length', '0');
  res.end();
}

async function deleteManifest(ctx: RouteContext, route: ManifestRoute): Promise<void> {
  const { res, metadata } = ctx;
  const name = route.name;
  const ref = parseManifestReference(route.reference);
  const unknown = (): RegistryError => new RegistryError('MANIFEST_UNKNOWN', `manifest ${shown(route.reference)} is not in repository ${name}`);
  if (ref.kind === 'tag' && !ref.valid) throw unknown();
  // § Deleting Manifests: "If the repository does not exist, the response MUST return 404 Not Found".
  if (!(await metadata.repositoryExists(name))) {
    throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known to this registry`, { detail: { name } });
  }
  await ctx.policy?.beforeDelete(name, ref.kind === 'tag' ? { tag: ref.tag } : { digest: ref.digest });
  // § Deleting tags: a tag DELETE untags; the manifest stays reachable by digest.
  const deleted = ref.kind === 'tag' ? await metadata.deleteTag(name, ref.tag) : await metadata.deleteManifest(name, ref.digest);
  ctx.cache?.invalidate(name);
  if (!deleted) throw unknown();
  res.status(202).setHeader('Content-Length', '0');
  res.end();
}

/** True when the Accept header admits `mediaType`: absent or empty, `*\/*`, `type/*` or the type itself with q > 0. */
export function acceptable(accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined || accept.trim() === '') return true;
  const [family] = mediaType.split('/');
  for (const entry of accept.split(',')) {
    const [range = '', ...params] = entry.split(';').map((s) => s.trim().toLowerCase());
    if (range === '') continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (range === '*/*' || range === mediaType || range === `${family}/*`) return true;
  }
  return false;
}
