import type { Readable } from 'node:stream';
import type { Descriptor } from '../descriptor.js';
import type { Digest } from '../digest.js';
import { KilnError } from '../errors.js';
import type { RawManifest } from '../manifest.js';
import { MANIFEST_MEDIA_TYPES } from '../media-types.js';
import { DEFAULT_TAG, formatReference, type ImageReference } from '../reference.js';
import type { BlobData, GetBlobOptions, PutBlobOptions, ReferrersQuery, Target, TargetRef } from '../target.js';
import { referrerDescriptor } from './referrers.js';
import { RegistryClient, type RegistryClientOptions } from './registry-client.js';

/** Options of a registry target: client options, or a client to share, plus upload tuning. */
export interface RegistryTargetOptions extends Omit<RegistryClientOptions, 'registry'> {
  /** A client of the same registry to share (one token cache and connection pool for source and destination). */
  client?: RegistryClient;
  /** Upload blobs in chunks of this many bytes instead of one streamed PUT. */
  chunkSize?: number;
}

/** One repository of a registry as a `Target`, opened at a tag and/or digest. */
export class RegistryTarget implements Target {
  readonly description: string;
  readonly ref: TargetRef;
  readonly client: RegistryClient;
  readonly repository: string;
  private readonly chunkSize: number | undefined;
  /** Uploads under way, by digest: a second putBlob of the same blob waits for the first instead of racing it. */
  private readonly uploading = new Map<Digest, Promise<void>>();

  constructor(client: RegistryClient, reference: ImageReference, options: { chunkSize?: number } = {}) {
    if (client.registry !== reference.registry) {
      throw new KilnError('USAGE', `client of ${client.registry} cannot open ${formatReference(reference)}`);
    }
    this.client = client;
    this.repository = reference.repository;
    this.description = formatReference(reference);
    this.ref = { tag: reference.tag, digest: reference.digest };
    this.chunkSize = options.chunkSize;
  }

  /** The manifest the reference names; a digest wins over a tag. */
  resolve(): Promise<RawManifest> {
    return this.client.getManifest(this.repository, this.ref.digest ?? this.ref.tag ?? DEFAULT_TAG);
  }

  /** A manifest by digest or tag, verified against the digest. */
  getManifest(ref: Digest | string, mediaTypeHint?: string): Promise<RawManifest> {
    // The hinted type goes first; the others stay acceptable, since registries serve the type they stored.
    const accept = mediaTypeHint ? [mediaTypeHint, ...MANIFEST_MEDIA_TYPES.filter((m) => m !== mediaTypeHint)] : undefined;
    return this.client.getManifest(this.repository, ref, accept ? { accept } : {});
  }

  /**
   * Pushes the manifest under `tag`, or its digest. A manifest with a subject, pushed to a registry
   * that did not answer OCI-Subject (no referrers API), is also recorded in the tag-schema index.
   */
  async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    const result = await this.client.putManifest(this.repository, tag ?? manifest.digest, manifest);
    const subject = manifest.parsed.subject;
    if (subject && result.subject === undefined) {
      await this.client.addFallbackReferrer(this.repository, subject.digest, referrerDescriptor(manifest));
    }
  }

  /** Size of a blob, or undefined. */
  statBlob(digest: Digest): Promise<number | undefined> {
    return this.client.headBlob(this.repository, digest);
  }

  /** The blob's bytes; the stream errors unless they match `desc`. */
  getBlob(desc: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
    return this.client.getBlob(this.repository, desc, { verify: options.verify });
  }

  /** Uploads the blob unless the repository has it; the registry verifies the digest before committing. */
  async putBlob(desc: Descriptor, data: BlobData, options: PutBlobOptions = {}): Promise<void> {
    const pending = this.uploading.get(desc.digest);
    if (pending) {
      // Same digest, same bytes: once the first upload is stored, this one is too (a failed one is retried here).
      const stored = await pending.then(() => true, () => false);
      if (stored) {
        if (typeof data !== 'function') data.destroy();
        return;
      }
    }
    const upload = this.client
      .uploadBlob(this.repository, desc, data, { ...(this.chunkSize === undefined ? {} : { chunkSize: this.chunkSize }), skipExisting: options.fresh !== true })
      .then(() => undefined);
    this.uploading.set(desc.digest, upload);
    try {
      await upload;
    } finally {
      if (this.uploading.get(desc.digest) === upload) this.uploading.delete(desc.digest);
    }
  }

  /** Cross-repository mount from `fromRepository` of this registry; false means "upload it". */
  mountBlob(desc: Descriptor, fromRepository: string): Promise<boolean> {
    return this.client.mountBlob(this.repository, desc, fromRepository);
  }

  /** Registry and repository, so a copy between repositories of one registry can mount blobs. */
  get origin(): { registry: string; repository: string } {
    return { registry: this.client.registry, repository: this.repository };
  }

  /** Referrers of `digest` (API or tag-schema fallback). */
  referrers(digest: Digest, query?: ReferrersQuery): Promise<Descriptor[]> {
    return this.client.listReferrers(this.repository, digest, query);
  }

  /** Tags of the repository. */
  tags(): Promise<string[]> {
    return this.client.listTags(this.repository);
  }

  /** Nothing to flush: every write is already on the registry. */
  async close(): Promise<void> {
    return undefined;
  }
}

/** Opens `ref` on its registry as a Target; no request is made until the first operation. */
export async function openRegistryTarget(ref: ImageReference, options: RegistryTargetOptions = {}): Promise<RegistryTarget> {
  const { client, chunkSize, ...clientOptions } = options;
  const shared = client ?? new RegistryClient({ ...clientOptions, registry: ref.registry });
  return new RegistryTarget(shared, ref, chunkSize === undefined ? {} : { chunkSize });
}
