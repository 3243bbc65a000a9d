import type { Digest } from '../../oci/digest.js';

/** A tag as garbage collection sees it. */
export interface TagRow {
  tag: string;
  digest: Digest;
  /** When the tag was last written or moved (ms since the epoch). */
  updatedAt: number;
}

/** A manifest without its bytes: what marking needs. */
export interface ManifestNode {
  digest: Digest;
  /** When the manifest was first stored (ms since the epoch). */
  createdAt: number;
  subject: Digest | undefined;
  /** Blobs it references (config, layers). */
  blobs: Digest[];
  /** Entries of an index (normally manifests; may be plain blobs). */
  manifests: Digest[];
}

/** A repository's link to a blob (blob membership). */
export interface BlobLink {
  digest: Digest;
  size: number;
  /** When the repository last gained the blob: upload completion or mount (ms since the epoch). */
  linkedAt: number;
}

/** One repository's metadata as read inside a sweep's transaction. */
export interface RepositorySnapshot {
  repository: string;
  tags: TagRow[];
  manifests: ManifestNode[];
  links: BlobLink[];
}

/** What to remove from one repository: tags, manifests (with their tags) and blob links. */
export interface RepositorySweep {
  tags: string[];
  manifests: Digest[];
  links: Digest[];
}

/** Who holds the garbage-collection lock. */
export interface GcLockHolder {
  owner: string;
  /** Last sign of life of the holder (ms since the epoch). */
  heartbeatAt: number;
}

/** What still refers to a blob: repositories linking it and manifests listing it. */
export interface BlobReferences {
  links: string[];
  manifests: Array<{ repository: string; digest: Digest }>;
}

/**
 * The MetadataStore part garbage collection uses. Every removal is recorded for an hour as a tombstone:
 * a write that raced the collector and still relies on what went (a manifest naming a blob whose link
 * was swept after the request checked it, a mount of a deleted blob) is refused instead of stored.
 */
export interface GarbageCollectionStore {
  /** Takes (or renews) the GC lock for `owner`, taking over a holder silent since `staleBefore`; returns the other holder when busy. */
  lockGc(owner: string, now: number, staleBefore: number): Promise<GcLockHolder | undefined>;
  /** Releases the GC lock when `owner` holds it, and forgets tombstones older than `tombstonesBefore`. */
  unlockGc(owner: string, tombstonesBefore: number): Promise<void>;
  /** A counter that moves whenever a sweep removes tags or manifests (servers then drop cached manifests). */
  gcGeneration(): Promise<number>;
  /**
   * Reads `repository`, asks `decide` what to remove and removes it, all in one write transaction, so no
   * push can interleave; with `dryRun`, only reads and decides.
   */
  sweepRepository(repository: string, decide: (snapshot: RepositorySnapshot) => RepositorySweep, options?: { dryRun?: boolean }): Promise<RepositorySweep>;
  /** Repositories linking the blob and manifests listing it. */
  blobReferences(digest: Digest): Promise<BlobReferences>;
  /**
   * Runs `remove` (deleting the bytes) inside a write transaction when no repository links the blob, no
   * manifest lists it and no upload session of `size` bytes could be committing it; true when removed.
   */
  deleteBlobIfUnreferenced(digest: Digest, size: number, remove: () => Promise<boolean>): Promise<boolean>;
}
