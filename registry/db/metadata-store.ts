import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import type { GarbageCollectionStore } from './gc-store.js';

/** A manifest as the registry stores it: exact bytes plus what the API needs without re-parsing. */
export interface ManifestRecord {
  repository: string;
  digest: Digest;
  mediaType: string;
  /** Exact bytes as pushed (the digest is of these bytes). */
  bytes: Buffer;
  /** `artifactType`, or the config media type for image manifests (referrers API rule). */
  artifactType?: string | undefined;
  /** Digest of the `subject` descriptor, when the manifest has one. */
  subject?: Digest | undefined;
  annotations?: Record<string, string> | undefined;
  /** Blobs (config, layers) this manifest references: kept alive by it for GC. */
  blobs: Digest[];
  /** Child manifests of an index. */
  manifests: Digest[];
  /** Milliseconds since the epoch. */
  createdAt: number;
}

/** An upload session (distribution-spec "blob upload"). Its bytes live in a file the registry owns. */
export interface UploadRecord {
  id: string;
  repository: string;
  /** Bytes received so far. */
  offset: number;
  createdAt: number;
  updatedAt: number;
}

/** Cursor pagination as the distribution-spec defines it (`n`, `last`), results in lexical order. */
export interface Page {
  /** Maximum entries; undefined means all. */
  n?: number | undefined;
  /** Return entries lexically after this one. */
  last?: string | undefined;
}

/**
 * Registry metadata: repositories, blob membership, manifests, tags, referrers and upload sessions.
 * Blob bytes are not here (they are in a BlobStore). Every method is atomic; implementations must
 * pass test/registry/db/metadata-store.contract.ts. Garbage collection's part is in gc-store.ts.
 */
export interface MetadataStore extends GarbageCollectionStore {
  /** Records that `repository` holds blob `digest` (creating the repository when new, refreshing the link's age when not). */
  linkBlob(repository: string, digest: Digest, size: number): Promise<void>;
  /** Size of the blob when `repository` holds it. */
  blobSize(repository: string, digest: Digest): Promise<number | undefined>;
  /** Removes the blob from the repository; false when it was not linked. */
  unlinkBlob(repository: string, digest: Digest): Promise<boolean>;
  /** True when any repository links the blob or any manifest references it (GC safety). */
  blobInUse(digest: Digest): Promise<boolean>;

  /** Stores a manifest and, in the same transaction, points `tag` at it (moving the tag if needed). */
  putManifest(record: ManifestRecord, tag?: string): Promise<void>;
  getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined>;
  /** Digest a tag points to. */
  resolveTag(repository: string, tag: string): Promise<Digest | undefined>;
  /** Deletes a manifest and every tag pointing to it; false when unknown. */
  deleteManifest(repository: string, digest: Digest): Promise<boolean>;
  /** Removes a tag (the manifest stays); false when unknown. */
  deleteTag(repository: string, tag: string): Promise<boolean>;
  /** Tags of a repository, lexically ordered, paginated; undefined when the repository is unknown. */
  listTags(repository: string, page?: Page): Promise<string[] | undefined>;
  /** Repositories, lexically ordered, paginated. */
  listRepositories(page?: Page): Promise<string[]>;
  /** True when the repository exists (has a blob, manifest or tag). */
  repositoryExists(repository: string): Promise<boolean>;
  /** Bytes the repository holds (quotas): each distinct linked blob once, plus the bytes of its manifests; 0 when unknown. */
  repositoryUsage(repository: string): Promise<number>;
  /** Descriptors of manifests whose subject is `subject`, optionally only one artifactType. */
  listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]>;

  createUpload(record: UploadRecord): Promise<void>;
  getUpload(repository: string, id: string): Promise<UploadRecord | undefined>;
  /** Sets the received offset; fails with BLOB_UPLOAD_UNKNOWN when the session is gone. */
  updateUpload(repository: string, id: string, offset: number, updatedAt: number): Promise<void>;
  deleteUpload(repository: string, id: string): Promise<boolean>;
  /** Sessions not updated since `updatedBefore` (ms), for cleanup after a restart. */
  listStaleUploads(updatedBefore: number): Promise<UploadRecord[]>;

  close(): Promise<void>;
}
