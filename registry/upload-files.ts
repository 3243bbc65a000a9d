import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { dirname } from 'node:path';
import { once } from 'node:events';
import type { BlobStore } from '../oci/content/blob-store.js';
import { BufferedFileSink } from '../oci/content/buffered-file-sink.js';
import { FsBlobStore, fsyncPath } from '../oci/content/fs-blob-store.js';
import type { Digest, DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from './errors.js';

/** A sha256 fed chunk by chunk that can be snapshotted, so a failed chunk can be taken back out. */
export class IncrementalHash {
  private readonly hash: Hash;
  private bytes: number;

  constructor(hash: Hash = createHash('sha256'), bytes = 0) {
    this.hash = hash;
    this.bytes = bytes;
  }

  update(chunk: Buffer): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  /** Bytes hashed so far. */
  get size(): number {
    return this.bytes;
  }

  /** An independent copy of the current state. */
  snapshot(): IncrementalHash {
    return new IncrementalHash(this.hash.copy(), this.bytes);
  }

  /** The digest so far; the hash itself stays usable (a copy is finalised). */
  digest(): Digest {
    return `sha256:${this.hash.copy().digest('hex')}` as Digest;
  }
}

/** Digest of a file's content with `algorithm`, streamed. */
export async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<Digest> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `${algorithm}:${hash.digest('hex')}` as Digest;
}

/**
 * Moves a verified upload file into the blob store. On a filesystem store that is fsync + rename
 * (no copy of a layer); otherwise, or across filesystems, the store's own verifying `put`.
 */
export async function commitUpload(blobs: BlobStore, path: string, digest: Digest, size: number): Promise<void> {
  if (blobs instanceof FsBlobStore) {
    if ((await blobs.stat(digest))?.size === size) {
      // Deduplicated: the store already has these bytes under this digest.
      await rm(path, { force: true });
      return;
    }
    const final = blobs.path(digest);
    try {
      await fsyncPath(path);
      await mkdir(dirname(final), { recursive: true });
      await rename(path, final);
      await fsyncPath(dirname(final));
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EXDEV') throw err;
    }
  }
  await blobs.put(createReadStream(path), { expectedDigest: digest, expectedSize: size, subject: `upload of blob ${digest}` });
  await rm(path, { force: true });
}

/** Resolves once a writable has released its file descriptor (after a failed pipeline). */
export async function waitClosed(stream: Writable): Promise<void> {
  if (stream.closed) return;
  if (!stream.destroyed) stream.destroy();
  await once(stream, 'close');
}

/**
 * Writes one chunk of an upload into the session's file at `offset`: counts it, fails as soon as it is longer than
 * `limit` (its Content-Range), feeds `hash` (when the session's hash is in step) and writes through a
 * BufferedFileWriter, so a push allocates no buffer per write. Not fsynced: the upload is, once, when committed.
 */
export class UploadChunkSink extends BufferedFileSink {
  bytes = 0;

  constructor(
    path: string,
    offset: number,
    private readonly limit: number | undefined,
    private readonly hash: IncrementalHash | undefined,
  ) {
    super(path, { flags: 'r+', position: offset, sync: false, highWaterMark: 1 << 20 });
  }

  protected override accept(chunk: Buffer): Error | undefined {
    this.bytes += chunk.length;
    if (this.limit !== undefined && this.bytes > this.limit) {
      return new RegistryError('RANGE_INVALID', `the chunk is longer than the ${this.limit} bytes its Content-Range announces`);
    }
    this.hash?.update(chunk);
    return undefined;
  }
}
