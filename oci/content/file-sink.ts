import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { digestAlgorithm, Digester, mismatchError, oversizeError, type Digest, type VerifyOptions } from '../digest.js';
import { KilnError } from '../errors.js';

/**
 * Bytes gathered before one write(2): network chunks are 16–64 KiB, and every write is a thread-pool round trip.
 * Not more: ext4 caches a write in folios as large as the write, and on a VM a 1 MiB folio can come from memory
 * the host has reclaimed, so filling it costs ~2 ms per MiB instead of ~0.2 (200 MiB pulls measured 0.2 → 0.45–0.75 s
 * system time in about a third of runs with 1 MiB writes, never with 256 KiB ones).
 */
const WRITE_BUFFER = 256 << 10;

/** Bytes the stream queues before it asks its source to wait: a few network chunks beyond the buffer filling. */
const QUEUE_BYTES = 1 << 20;

/**
 * Bytes written between background fdatasync calls. The kernel starts writeback only at its dirty limits (GiBs), so
 * without them the closing fsync of a 100 MiB layer writes all of it (~40 ms) while the copy waits; with them the
 * writeback overlaps the download and the closing fsync flushes at most this much.
 */
const SYNC_EVERY = 16 << 20;

/** What the bytes must be (digest checked at the end; more than expectedSize fails at once) and their name in errors. */
export type FileSinkOptions = Omit<VerifyOptions, 'countOnly' | 'algorithm'>;

/**
 * A Writable that hashes, counts and writes what it receives to a new file (created exclusively), in
 * 256 KiB writes from two reused buffers: one fills (and is hashed) on the main thread while the other is
 * written on the thread pool. It fails on finish unless the size and digest are as expected, and
 * fsyncs the file before it finishes (after background fdatasyncs every SYNC_EVERY bytes); the caller renames it
 * into place and removes it on failure.
 * One stage instead of a hashing transform, a coalescing transform and a file stream: a third of the
 * per-chunk work, and no garbage buffer per write.
 */
export class FileSink extends Writable {
  readonly path: string;
  private readonly options: FileSinkOptions;
  private readonly digester: Digester;
  private file: FileHandle | undefined;
  private buffers = [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
  private filled = 0;
  private writing: Promise<void> = Promise.resolve();
  /** Bytes written since the last background fdatasync started. */
  private unsynced = 0;
  /** The background fdatasync under way (or failed: finish() reports it); undefined once one succeeded. */
  private syncing: Promise<void> | undefined;
  private result: Digest | undefined;

  constructor(path: string, options: FileSinkOptions = {}) {
    super({ highWaterMark: QUEUE_BYTES });
    this.path = path;
    this.options = options;
    this.digester = new Digester(options.expected ? digestAlgorithm(options.expected) : 'sha256');
  }

  /** The digest of what was written; set once the stream finished without error. */
  get digest(): Digest {
    if (this.result === undefined) throw new KilnError('INTERNAL', 'FileSink digest read before the stream finished');
    return this.result;
  }

  get size(): number {
    return this.digester.size;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, 'wx', 0o644).then(
      (file) => {
        this.file = file;
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.digester.update(chunk);
    const oversize = oversizeError(this.options, this.digester.size);
    if (oversize) callback(oversize);
    else this.append(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finish().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const file = this.file;
    this.file = undefined;
    // Let an in-flight write or fdatasync settle before the descriptor closes under it.
    Promise.all([this.writing, this.syncing])
      .catch(() => undefined)
      .then(() => file?.close())
      .then(() => callback(error), () => callback(error));
  }

  /** Copies `chunk` into the filling buffer; each full buffer is written while the next one fills. */
  private async append(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const current = this.buffers[0]!;
      const n = chunk.copy(current, this.filled, offset);
      this.filled += n;
      offset += n;
      if (this.filled === WRITE_BUFFER) await this.flush();
    }
  }

  /** Starts writing the filled buffer (after the previous write is done) and swaps in the other one. */
  private async flush(): Promise<void> {
    await this.writing;
    const full = this.buffers[0]!;
    const length = this.filled;
    this.buffers = [this.buffers[1]!, full];
    this.filled = 0;
    this.writing = this.writeAll(full, length);
    this.unsynced += length;
    if (this.unsynced >= SYNC_EVERY && this.syncing === undefined) this.startSync();
  }

  /** fdatasync of what is written so far, on the thread pool, without holding up the next writes. */
  private startSync(): void {
    const file = this.file;
    if (!file) return;
    this.unsynced = 0;
    const sync = this.writing.then(() => file.datasync());
    this.syncing = sync;
    // A failure stays in `syncing` for finish() to throw; nothing is left unhandled meanwhile.
    sync.then(
      () => {
        if (this.syncing === sync) this.syncing = undefined;
      },
      () => undefined,
    );
  }

  private async writeAll(buffer: Buffer, length: number): Promise<void> {
    const file = this.file;
    if (!file) throw new KilnError('INTERNAL', `FileSink for ${this.path} written after it closed`);
    for (let done = 0; done < length; ) {
      const { bytesWritten } = await file.write(buffer, done, length - done);
      done += bytesWritten;
    }
  }

  private async finish(): Promise<void> {
    if (this.filled > 0) await this.flush();
    await this.writing;
    await this.syncing;
    const actual = this.digester.digest();
    const mismatch = mismatchError(this.options, this.digester.size, actual);
    if (mismatch) throw mismatch;
    await this.file?.sync();
    await this.file?.close();
    this.file = undefined;
    this.result = actual;
  }
}
