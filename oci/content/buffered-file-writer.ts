import type { FileHandle } from 'node:fs/promises';
import { KilnError } from '../errors.js';

/**
 * Bytes gathered before one write(2): network chunks are 16–64 KiB, and every write is a thread-pool round trip.
 * Not more: ext4 caches a write in folios as large as the write, and on a VM a 1 MiB folio can come from memory
 * the host has reclaimed, so filling it costs ~2 ms per MiB instead of ~0.2 (200 MiB pulls measured 0.2 → 0.45–0.75 s
 * system time in about a third of runs with 1 MiB writes, never with 256 KiB ones).
 */
export const WRITE_BUFFER = 256 << 10;

/**
 * Bytes written between background fdatasync calls. The kernel starts writeback only at its dirty limits (GiBs), so
 * without them the closing fsync of a 100 MiB layer writes all of it (~40 ms) while the writer waits; with them the
 * writeback overlaps the transfer and the closing fsync flushes at most this much.
 */
const SYNC_EVERY = 16 << 20;

/**
 * Writes a stream of chunks to an open file from `position` on, in WRITE_BUFFER writes from two reused buffers:
 * one fills on the caller's thread while the other is written on the thread pool, so no buffer is allocated per
 * write. The writer owns the handle: `finish` or `discard` closes it.
 */
export class BufferedFileWriter {
  private buffers = [Buffer.allocUnsafe(WRITE_BUFFER), Buffer.allocUnsafe(WRITE_BUFFER)];
  private filled = 0;
  private position: number;
  private writing: Promise<void> = Promise.resolve();
  /** Bytes written since the last background fdatasync started. */
  private unsynced = 0;
  /** The background fdatasync under way (or failed: finish() reports it); undefined once one succeeded. */
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly file: FileHandle,
    /** Names the file in errors. */
    private readonly name: string,
    position = 0,
  ) {
    this.position = position;
  }

  /** Copies `chunk` into the filling buffer; resolves once the caller may reuse `chunk` and send more. */
  async append(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const n = chunk.copy(this.buffers[0]!, this.filled, offset);
      this.filled += n;
      offset += n;
      if (this.filled === WRITE_BUFFER) await this.flush();
    }
  }

  /** Writes what is buffered, waits for every write, with `sync` makes the data durable (fsync), and closes the file. */
  async finish(options: { sync: boolean }): Promise<void> {
    if (this.filled > 0) await this.flush();
    await this.writing;
    await this.syncing;
    if (options.sync) await this.file.sync();
    this.closed = true;
    await this.file.close();
  }

  /** Closes the file once the write and fdatasync in flight settled (not under them), ignoring their failure. */
  async discard(): Promise<void> {
    await Promise.all([this.writing, this.syncing]).catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    await this.file.close().catch(() => undefined);
  }

  /** Starts writing the filled buffer (after the previous write is done) and swaps in the other one. */
  private async flush(): Promise<void> {
    await this.writing;
    const full = this.buffers[0]!;
    const length = this.filled;
    this.buffers = [this.buffers[1]!, full];
    this.filled = 0;
    this.writing = this.writeAll(full, length, this.position);
    // A failure (ENOSPC, EIO) is thrown by the next append or finish; until then it must not count as unhandled.
    this.writing.catch(() => undefined);
    this.position += length;
    this.unsynced += length;
    if (this.unsynced >= SYNC_EVERY && this.syncing === undefined) this.startSync();
  }

  /** fdatasync of what is written so far, on the thread pool, without holding up the next writes. */
  private startSync(): void {
    this.unsynced = 0;
    const sync = this.writing.then(() => this.file.datasync());
    this.syncing = sync;
    // A failure stays in `syncing` for finish() to throw; nothing is left unhandled meanwhile.
    sync.then(
      () => {
        if (this.syncing === sync) this.syncing = undefined;
      },
      () => undefined,
    );
  }

  private async writeAll(buffer: Buffer, length: number, position: number): Promise<void> {
    for (let done = 0; done < length; ) {
      const { bytesWritten } = await this.file.write(buffer, done, length - done, position + done);
      if (bytesWritten === 0) throw new KilnError('INTERNAL', `${this.name}: the file took no bytes`);
      done += bytesWritten;
    }
  }
}
