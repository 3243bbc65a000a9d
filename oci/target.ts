import type { Readable } from 'node:stream';
import type { Descriptor } from './descriptor.js';
import type { Digest } from './digest.js';
import type { RawManifest } from './manifest.js';

/** Blob bytes to store: a stream, or a factory a registry upload can call again to retry from the start. */
export type BlobData = Readable | (() => Promise<Readable>);

/** Options of `Target.getBlob`. */
export interface GetBlobOptions {
  /** Hash and check the digest (default true). */
  verify?: boolean;
}

/** Options of `Target.putBlob`. */
export interface PutBlobOptions {
  /**
   * The caller has just made these bytes (a new signature, say), so the store is unlikely to hold them: a
   * registry target uploads without first asking whether the blob is there, saving a round trip.
   */
  fresh?: boolean;
}

/** What a target reference names inside its store: a tag, a digest, or nothing (the only image). */
export interface TargetRef {
  tag?: string | undefined;
  digest?: Digest | undefined;
}

/** Options for listing referrers. */
export interface ReferrersQuery {
  artifactType?: string;
}

/**
 * One place images live — a registry repository, an OCI layout, an oci-archive or docker-archive —
 * behind one interface, so copy, build output, sign, verify and analyze take any of them.
 */
export interface Target {
  /** Human description for messages, e.g. `oci:./out:latest` or `localhost:5000/app:1`. */
  readonly description: string;
  /** The tag/digest this target was opened with. */
  readonly ref: TargetRef;
  /** Registry and repository, for registry targets: lets a copy mount blobs across repositories. */
  readonly origin?: { registry: string; repository: string };

  /** The manifest the target's ref names (tag, digest, or the layout's single image). */
  resolve(): Promise<RawManifest>;
  /** A manifest by digest (or tag), verified against the digest when one is given. */
  getManifest(ref: Digest | string, mediaTypeHint?: string): Promise<RawManifest>;
  /** Stores manifest bytes exactly as given; tags it when `tag` is given. */
  putManifest(manifest: RawManifest, tag?: string): Promise<void>;

  /** Size of a blob when present, undefined otherwise. */
  statBlob(digest: Digest): Promise<number | undefined>;
  /**
   * The blob's bytes; the stream errors if they do not match `desc` (digest and size). With
   * `verify: false` only the size is enforced: for consumers that verify themselves, such as
   * another target's `putBlob` (a copy), so the bytes are not hashed twice.
   */
  getBlob(desc: Descriptor, options?: GetBlobOptions): Promise<Readable>;
  /** Stores a blob; verified against `desc` before it becomes visible. */
  putBlob(desc: Descriptor, data: BlobData, options?: PutBlobOptions): Promise<void>;
  /** Mounts a blob from another repository of the same store when possible; false means "upload it". */
  mountBlob?(desc: Descriptor, fromRepository: string): Promise<boolean>;

  /** Manifests whose `subject` is `digest` (OCI 1.1 referrers, with tag-schema fallback). */
  referrers(digest: Digest, query?: ReferrersQuery): Promise<Descriptor[]>;
  /** Tags in the repository / layout. */
  tags(): Promise<string[]>;

  /**
   * Makes writes durable (archives are written here) and releases resources. With `discard`
   * (after a failed copy) nothing is committed: an archive is not written, temp files go.
   */
  close(options?: { discard?: boolean }): Promise<void>;
}
