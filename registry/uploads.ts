import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobStore } from '../oci/content/blob-store.js';
import { isNotFound } from '../oci/content/fs-blob-store.js';
import { type Digest, digestAlgorithm } from '../oci/digest.js';
import { isKilnError } from '../oci/errors.js';
import type { MetadataStore, UploadRecord } from './db/metadata-store.js';
import { RegistryError } from './errors.js';
import type { RegistryLogger } from './logger.js';
import { pipeBody } from './request-body.js';
import { commitUpload, hashFile, IncrementalHash, UploadChunkSink, waitClosed } from './upload-files.js';

/** An inclusive byte range of a chunk (`Content-Range: start-end`, distribution-spec § Pushing a blob in chunks). */
export interface ChunkRange {
  start: number;
  end: number;
}

/** Options of `UploadSessions`. */
export interface UploadSessionsOptions {
  dir: string;
  metadata: MetadataStore;
  blobs: BlobStore;
  logger: RegistryLogger;
  /** Consulted once the upload is verified, before it becomes a blob of the repository (quotas); a refusal discards the upload. */
  beforeLink?: ((repository: string, digest: Digest, size: number) => Promise<void>) | undefined;
}

/** Sessions are ids this registry made: anything else is unknown, and never becomes a path. */
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Blob upload sessions: bytes in `<dir>/<id>`, the received offset in the MetadataStore, and a
 * sha256 kept in memory while chunks arrive in order, so completion need not re-read the file.
 */
export class UploadSessions {
  private readonly opts: UploadSessionsOptions;
  private readonly hashes = new Map<string, IncrementalHash>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private ready: Promise<unknown> | undefined;

  constructor(opts: UploadSessionsOptions) {
    this.opts = opts;
  }

  /** Opens a session for `repository` with an empty file. */
  async start(repository: string): Promise<UploadRecord> {
    this.ready ??= mkdir(this.opts.dir, { recursive: true });
    await this.ready;
    const now = Date.now();
    const record: UploadRecord = { id: randomUUID(), repository, offset: 0, createdAt: now, updatedAt: now };
    // The file first: a row without its file would look like an interrupted session to the next reader.
    await writeFile(this.file(record.id), '', { flag: 'wx' });
    await this.opts.metadata.createUpload(record);
    this.hashes.set(record.id, new IncrementalHash());
    return record;
  }

  /** The session's state, reconciled with its file (a crash may have lost bytes past the recorded offset). */
  async status(repository: string, id: string): Promise<UploadRecord> {
    return this.locked(id, () => this.load(repository, id));
  }

  /** Appends a chunk at the current offset; a `range` not starting there is 416 RANGE_INVALID. */
  async append(repository: string, id: string, body: Readable, range?: ChunkRange): Promise<UploadRecord> {
    return this.locked(id, async () => {
      const record = await this.load(repository, id);
      return { ...record, offset: await this.write(record, body, range) };
    });
  }

  /** Appends the optional final chunk, verifies the whole upload against `expected` and commits it as a blob. */
  async complete(repository: string, id: string, expected: Digest, body?: Readable, range?: ChunkRange): Promise<BlobInfo> {
    return this.locked(id, async () => {
      const record = await this.load(repository, id);
      const size = body ? await this.write(record, body, range) : record.offset;
      const hash = this.hashes.get(id);
      const algorithm = digestAlgorithm(expected);
      // Incremental hash when every byte went through this process in order; else (restart, sha512) re-read the file.
      const actual = hash?.size === size && algorithm === 'sha256' ? hash.digest() : await hashFile(this.file(id), algorithm);
      if (actual !== expected) {
        await this.remove(repository, id);
        throw new RegistryError('DIGEST_INVALID', `the uploaded content has digest ${actual}, not ${expected}; the upload was discarded`, {
          detail: { expected, actual },
        });
      }
      try {
        await this.opts.beforeLink?.(repository, expected, size);
      } catch (err) {
        await this.remove(repository, id);
        throw err;
      }
      await commitUpload(this.opts.blobs, this.file(id), expected, size);
      await this.opts.metadata.linkBlob(repository, expected, size);
      await this.remove(repository, id);
      return { digest: expected, size };
    });
  }

  /** Cancels a session (DELETE), removing its bytes. */
  async cancel(repository: string, id: string): Promise<void> {
    await this.locked(id, async () => {
      await this.load(repository, id);
      await this.remove(repository, id);
    });
  }

  /**
   * Removes sessions idle since before `now - maxAgeMs`, and with `orphans` (only while no request
   * runs, i.e. at startup) files no session owns. Returns how many sessions and files went.
   */
  async cleanup(options: { maxAgeMs: number; orphans?: boolean; now?: number }): Promise<{ sessions: number; files: number }> {
    const now = options.now ?? Date.now();
    let sessions = 0;
    for (const record of await this.opts.metadata.listStaleUploads(now - options.maxAgeMs)) {
      if (this.locks.has(record.id)) continue; // In use right now: not stale after all.
      await this.locked(record.id, () => this.remove(record.repository, record.id));
      sessions++;
    }
    let files = 0;
    if (options.orphans) {
      const live = new Set((await this.opts.metadata.listStaleUploads(Number.MAX_SAFE_INTEGER)).map((r) => r.id));
      for (const name of await readdir(this.opts.dir).catch((err: unknown) => (isNotFound(err) ? [] : Promise.reject(err)))) {
        if (live.has(name)) continue;
        await rm(join(this.opts.dir, name), { force: true, recursive: true });
        files++;
      }
    }
    return { sessions, files };
  }

  private file(id: string): string {
    return join(this.opts.dir, id);
  }

  private async load(repository: string, id: string): Promise<UploadRecord> {
    const unknown = (): RegistryError => new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${JSON.stringify(id.slice(0, 80))} is not in progress in ${repository}`);
    if (!UPLOAD_ID.test(id)) throw unknown();
    const record = await this.opts.metadata.getUpload(repository, id);
    if (!record) throw unknown();
    let onDisk: number;
    try {
      onDisk = (await stat(this.file(id))).size;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.opts.metadata.deleteUpload(repository, id);
      throw unknown();
    }
    if (onDisk < record.offset) {
      // Bytes the offset counts never reached the disk (a crash before writeback): resume from what is there.
      this.hashes.delete(id);
      await this.opts.metadata.updateUpload(repository, id, onDisk, Date.now());
      return { ...record, offset: onDisk };
    }
    return record;
  }

  /** Writes `body` at the session's offset; on any failure the file and hash go back to that offset. */
  private async write(record: UploadRecord, body: Readable, range?: ChunkRange): Promise<number> {
    const { id, repository, offset } = record;
    if (range && range.start !== offset) {
      throw rangeError(`chunk starts at ${range.start} but ${offset} bytes have been received (chunks must be in order)`, offset, id, repository);
    }
    const path = this.file(id);
    // Bytes past the offset are from an interrupted request: the next chunk replaces them.
    await truncate(path, offset);
    let hash = this.hashes.get(id);
    if (!hash && offset === 0) this.hashes.set(id, (hash = new IncrementalHash()));
    const snapshot = hash?.size === offset ? hash.snapshot() : undefined;
    if (!snapshot) this.hashes.delete(id);
    const limit = range ? range.end - range.start + 1 : undefined;
    const sink = new UploadChunkSink(path, offset, limit, snapshot === undefined ? undefined : hash);
    try {
      await pipeBody(body, sink);
      if (limit !== undefined && sink.bytes !== limit) {
        throw rangeError(`Content-Range announces ${limit} bytes but the chunk has ${sink.bytes}`, offset, id, repository);
      }
    } catch (err) {
      await waitClosed(sink);
      await truncate(path, offset);
      if (snapshot) this.hashes.set(id, snapshot);
      // The sink cannot know the session; the client needs its Range and Location to resume.
      if (isKilnError(err, 'RANGE_INVALID')) throw rangeError(err.message, offset, id, repository);
      throw err;
    }
    const next = offset + sink.bytes;
    await this.opts.metadata.updateUpload(repository, id, next, Date.now());
    return next;
  }

  private async remove(repository: string, id: string): Promise<void> {
    this.hashes.delete(id);
    await this.opts.metadata.deleteUpload(repository, id);
    await rm(this.file(id), { force: true });
  }

  /** Runs `fn` once every earlier operation on the session has settled: one writer per session. */
  private async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    }
  }
}

/** The `Range` value of a session at `offset` (`0-<last byte>`; Distribution says `0-0` when empty). */
export function uploadRange(offset: number): string {
  return `0-${Math.max(offset - 1, 0)}`;
}

function rangeError(message: string, offset: number, id: string, repository: string): RegistryError {
  return new RegistryError('RANGE_INVALID', message, {
    detail: { offset },
    headers: { Range: uploadRange(offset), Location: `/v2/${repository}/blobs/uploads/${id}`, 'Docker-Upload-UUID': id },
  });
}
