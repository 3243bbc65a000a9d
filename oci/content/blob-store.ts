import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  /** Inclusive end; absent means to the end of the blob. */
  end?: number;
}

export interface BlobInfo {
  digest: Digest;
  size: number;
}

export interface PutBlobOptions {
  /** Digest the content must have; the blob is only committed when it matches. */
  expectedDigest?: Digest | undefined;
  /** Size the content must have. */
  expectedSize?: number | undefined;
  /** Name of the object for error messages. */
  subject?: string;
}

/**
 * Content-addressed blob storage. `put` verifies while streaming and commits atomically, so a
 * blob is visible under a digest only once its bytes are known to have that digest.
 */
export interface BlobStore {
  stat(digest: Digest): Promise<BlobInfo | undefined>;
  /** Stream of the blob's bytes, or of `range`; throws BLOB_UNKNOWN when absent. */
  get(digest: Digest, range?: ByteRange): Promise<Readable>;
  put(data: Readable | Uint8Array, options?: PutBlobOptions): Promise<BlobInfo>;
  /** Returns false when the blob was not there. */
  delete(digest: Digest): Promise<boolean>;
  list(): AsyncIterable<Digest>;
}
