import type { Request, Response } from 'express';
import type { BlobStore } from '../oci/content/blob-store.js';
import type { RawManifest } from '../oci/manifest.js';
import type { MetadataStore } from './db/metadata-store.js';
import type { RegistryLogger } from './logger.js';
import type { ManifestCache } from './manifest-cache.js';
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

/** Admission policy run on every manifest PUT after validation, before storing; throws (e.g. DENIED) to refuse. */
export type AdmissionHook = (manifest: RawManifest, repository: string, tag?: string) => Promise<void>;

/** What `createApp` is built from; auth and admission default to allowing everything. */
export interface RegistryDeps {
  blobs: BlobStore;
  metadata: MetadataStore;
  /** Directory for the bytes of upload sessions; on the blob store's filesystem so completion is a rename. */
  uploadsDir: string;
  authorize?: Authorizer;
  admit?: AdmissionHook;
  logger?: RegistryLogger;
  /** Cache of hot manifests (GET by tag); `false` turns it off. Default: 1000 entries. */
  manifestCache?: ManifestCache | false;
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
  authorize: (access: Access) => Promise<void>;
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
