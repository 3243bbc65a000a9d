import type { Readable } from 'node:stream';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';
import type { RawManifest } from '../manifest.js';
import { Authenticator } from './auth.js';
import { getBlob, headBlob, type GetBlobOptions } from './blobs.js';
import { discard } from './body.js';
import { lookupCredentials, type RegistryCredential } from './credentials.js';
import { registryError } from './errors.js';
import { deleteManifest, getManifest, headManifest, putManifest, type GetManifestOptions, type ManifestUpload, type PutManifestResult } from './manifests.js';
import { addFallbackReferrer, listReferrers, type ReferrersFilter } from './referrers.js';
import { listCatalog, listTags, type ListOptions } from './tags.js';
import { Transport, type RequestEvent } from './transport.js';
import { mountBlob, uploadBlob, type BlobSource, type UploadOptions, type UploadOutcome } from './uploads.js';

/** Options of a client for one registry. */
export interface RegistryClientOptions {
  /** Registry host[:port] as references name it (`docker.io`, `localhost:5000`). */
  registry: string;
  /** Plain HTTP to a registry that is not loopback (loopback registries get HTTP anyway). */
  insecure?: boolean;
  /** `--authfile`: first file of the credential lookup. */
  authfile?: string;
  /** Explicit credentials (e.g. `kiln login -u`); the lookup is skipped. */
  credentials?: { username: string; password: string };
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** User-Agent header (default `kiln/0.1`). */
  userAgent?: string;
  /** Environment for the credential lookup (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Base delay of the retry backoff in ms (default 250). */
  retryBaseMs?: number;
  /** Observer of every HTTP exchange (method, URL, status): for `--debug` and tests. Never sees headers. */
  onRequest?: (event: RequestEvent) => void;
}

/**
 * A client of one registry (OCI distribution-spec v1.1 / Docker Registry HTTP API v2). One client
 * per registry shares the connection pool and the token cache across repositories.
 */
export class RegistryClient {
  readonly registry: string;
  /** The HTTP layer, for requests this class does not wrap. */
  readonly transport: Transport;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.transport = new Transport(options);
    const explicit = options.credentials;
    const lookup = async (): Promise<RegistryCredential | undefined> =>
      explicit ? { ...explicit } : lookupCredentials(options.registry, { authfile: options.authfile, env: options.env ?? process.env });
    this.transport.useAuthenticator(new Authenticator(this.transport, lookup));
  }

  /** GET /v2/: checks that the registry answers and that the credentials (if any) are accepted. */
  async ping(): Promise<void> {
    const res = await this.transport.request({ method: 'GET', url: '/v2/', scopes: [] });
    if (res.status !== 200) throw await registryError(res, { registry: this.registry, object: 'the API version check (GET /v2/)' });
    await discard(res);
  }

  /** Descriptor of a manifest by tag or digest; undefined when absent. */
  headManifest(repository: string, reference: string): Promise<Descriptor | undefined> {
    return headManifest(this.transport, repository, reference);
  }

  /** A manifest by tag or digest, its bytes verified against the digest. */
  getManifest(repository: string, reference: string, options?: GetManifestOptions): Promise<RawManifest> {
    return getManifest(this.transport, repository, reference, options);
  }

  /** Pushes manifest bytes under a tag or their digest; returns the digest and the OCI-Subject header. */
  putManifest(repository: string, reference: string, manifest: ManifestUpload): Promise<PutManifestResult> {
    return putManifest(this.transport, repository, reference, manifest);
  }

  /** Deletes a manifest by digest. */
  deleteManifest(repository: string, digest: Digest): Promise<void> {
    return deleteManifest(this.transport, repository, digest);
  }

  /** Size of a blob, or undefined when the repository lacks it. */
  headBlob(repository: string, digest: Digest): Promise<number | undefined> {
    return headBlob(this.transport, repository, digest);
  }

  /** A blob's bytes, streamed; the stream errors unless they match `descriptor`. */
  getBlob(repository: string, descriptor: Descriptor, options?: GetBlobOptions): Promise<Readable> {
    return getBlob(this.transport, repository, descriptor, options);
  }

  /** Uploads a blob unless present (or mountable with `mountFrom`); monolithic, or chunked with `chunkSize`. */
  uploadBlob(repository: string, descriptor: Descriptor, source: BlobSource, options?: UploadOptions): Promise<UploadOutcome> {
    return uploadBlob(this.transport, repository, descriptor, source, options);
  }

  /** Cross-repository mount from another repository of this registry; false when the registry declined. */
  mountBlob(repository: string, descriptor: Descriptor, fromRepository: string): Promise<boolean> {
    return mountBlob(this.transport, repository, descriptor, fromRepository);
  }

  /** All tags of a repository, following `Link` pagination. */
  listTags(repository: string, options?: ListOptions): Promise<string[]> {
    return listTags(this.transport, repository, options);
  }

  /** Referrers of `subject`: the referrers API, or the `<alg>-<hex>` tag-schema index when it is missing. */
  listReferrers(repository: string, subject: Digest, filter?: ReferrersFilter): Promise<Descriptor[]> {
    return listReferrers(this.transport, repository, subject, filter);
  }

  /** Records `referrer` in the tag-schema index of `subject`, for registries without the referrers API. */
  addFallbackReferrer(repository: string, subject: Digest, referrer: Descriptor): Promise<void> {
    return addFallbackReferrer(this.transport, repository, subject, referrer);
  }

  /** All repositories (`/v2/_catalog`), following pagination. */
  catalog(options?: ListOptions): Promise<string[]> {
    return listCatalog(this.transport, options);
  }
}
