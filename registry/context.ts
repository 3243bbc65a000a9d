import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import type { BlobStore } from '../oci/content/blob-store.js';
import type { Descriptor } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import type { RawManifest } from '../oci/manifest.js';
import type { MetadataStore } from './db/metadata-store.js';
import type { RegistryLogger } from './logger.js';
import type { ManifestCache } from './manifest-cache.js';
import type { AccessLogSink } from './observability/access-log.js';
import type { RegistryMetrics } from './observability/metrics.js';
import type { RegistryRoute } from './routing.js';
import type { UploadSessions } from './uploads.js';

/** An action on a repository, as token scopes name them (`repository:NAME:pull,push`). */
export type Action = 'pull' | 'push' | 'delete';

/** What a request wants to do: `repository` absent means registry-wide (`/v2/`, `_catalog`). */
export interface Access {
  repository?: string;
  actions: Action[];
}

/** Decides whether a request may do `access`; throws UNAUTHORIZED (401) or DENIED (403) to refuse. */
export type Authorizer = (req: Request, access: Access) => Promise<void>;

/**
 * A read-only view of the registry's own content, given to admission hooks that need to consult it (a
 * signature policy reads an image's signatures and tag state). Reads bypass access control and admission.
 */
export interface RegistryReader {
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>;
  getManifest(repository: string, digest: Digest): Promise<{ digest: Digest; mediaType: string; bytes: Buffer } | undefined>;
  /** The size of a blob linked to `repository`; undefined when it is not. */
  blobSize(repository: string, digest: Digest): Promise<number | undefined>;
  /** A stored blob's bytes (the caller checks it is linked to the repository first). */
  getBlob(digest: Digest): Promise<Readable>;
  listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]>;
  listTags(repository: string): Promise<string[] | undefined>;
}

/**
 * Admission policy run before a manifest is stored (PUT, after validation; `action` push) and before one is
 * served (GET/HEAD; `action` pull, `tag` when requested by tag); throws (e.g. DENIED with a message) to refuse.
 * `context.reader` reads the registry's content.
 */
export type AdmissionHook = (
  manifest: RawManifest,
  repository: string,
  tag?: string,
  context?: { action: 'push' | 'pull'; reader?: RegistryReader },
) => Promise<void>;

/** Lists `_catalog` through: true when the caller of `req` may see `repository`. */
export type CatalogFilter = (req: Request, repository: string) => Promise<boolean>;

/** Storage policies (immutable tags, quotas) the routes consult before writing; each throws DENIED to refuse. */
export interface RepositoryPolicy {
  /** Before `repository` gains blob `digest` of `size` bytes (upload completion, mount). */
  beforeBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** Before a manifest is stored in `repository` and `tag`, if any, written or moved to it. */
  beforeManifest(repository: string, manifest: { digest: Digest; size: number }, tag?: string): Promise<void>;
  /** Before a tag, or a manifest by digest (with its tags), is deleted. */
  beforeDelete(repository: string, reference: { tag: string } | { digest: Digest }): Promise<void>;
}

/** What `createApp` is built from; auth and admission default to allowing everything. */
export interface RegistryDeps {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Directory for the bytes of upload sessions; on the blob store's filesystem so completion is a rename. */
  uploadsDir: string;
  authorize?: Authorizer;
  admit?: AdmissionHook;
  /** Filters `_catalog` (default: every repository is listed). */
  catalogFilter?: CatalogFilter;
  /** Serves `GET /token` (token authentication), when configured. */
  tokenEndpoint?: (req: Request, res: Response) => Promise<void>;
  policy?: RepositoryPolicy;
  logger?: RegistryLogger;
  /** Cache of hot manifests (GET by tag); `false` turns it off. Default: 1000 entries. */
  manifestCache?: ManifestCache | false;
  /** Counters served at `/metrics` (default: a fresh set). */
  metrics?: RegistryMetrics;
  /** Where access log lines go (one JSON line per request); undefined: no access log. */
  accessLog?: AccessLogSink;
}

/** Everything a route handler needs for one request. */
export interface RouteContext {
  req: Request;
  res: Response;
  /** The request URL, parsed (query parameters through `url.searchParams`). */
  url: URL;
  blobs: BlobStore;
  metadata: MetadataStore;
  uploads: UploadSessions;
  cache: ManifestCache | undefined;
  admit: AdmissionHook | undefined;
  policy: RepositoryPolicy | undefined;
  authorize: (access: Access) => Promise<void>;
  /** True when the caller may see `repository` in `_catalog`. */
  listable: (repository: string) => Promise<boolean>;
  logger: RegistryLogger;
}

/** Handler of one method of one endpoint. */
export interface RouteHandler<R extends RegistryRoute = RegistryRoute> {
  /** Access needed before the handler runs (the repository is the route's name). */
  actions: Action[];
  handle(ctx: RouteContext, route: R): Promise<void>;
}

/** The handlers of one API area, by HTTP method. */
export type AreaRoutes<A extends RegistryRoute['area']> = Partial<Record<string, RouteHandler<Extract<RegistryRoute, { area: A }>>>>;
