import { readFile } from 'node:fs/promises';

/** Files up to this size are read whole, ahead of the writer; larger ones are streamed when their turn comes. */
export const SMALL_FILE_BYTES = 256 * 1024;

/** Bounds on what is read ahead: bytes held and reads under way. */
const AHEAD_BYTES = 16 * 1024 * 1024;
const AHEAD_FILES = 64;

/**
 * Reads the small files of a layer ahead of the tar writer. Each read is four thread-pool jobs (open, fstat, read,
 * close) queued behind the gzip jobs; one at a time, a tree of small files would wait on the queue rather than the
 * disk, so many are kept under way (bounded in bytes and count).
 */
export class ReadAhead {
  private readonly pending = new Map<number, Promise<Buffer>>();
  private next = 0;
  private held = 0;

  constructor(private readonly items: ReadonlyArray<{ source?: string | undefined; size: number }>) {}

  /** Whether item `i` is read through `take` (a small file) rather than streamed. */
  isSmall(i: number): boolean {
    const item = this.items[i];
    return item?.source !== undefined && item.size <= SMALL_FILE_BYTES;
  }

  /** The content of small file `i`; items must be taken in increasing order. */
  async take(i: number): Promise<Buffer> {
    this.fill();
    const read = this.pending.get(i);
    if (!read) throw new RangeError(`read-ahead item ${i} was not scheduled`);
    this.pending.delete(i);
    this.held -= this.items[i]?.size ?? 0;
    this.fill();
    return read;
  }

  private fill(): void {
    while (this.next < this.items.length && this.pending.size < AHEAD_FILES) {
      const item = this.items[this.next] as { source?: string; size: number };
      if (!this.isSmall(this.next)) {
        this.next++;
        continue;
      }
      // The first pending read is always allowed, so an item is never starved by the byte bound.
      if (this.pending.size > 0 && this.held + item.size > AHEAD_BYTES) return;
      const read = readFile(item.source as string);
      // Observed when taken; until then a failure must not count as unhandled.
      read.catch(() => undefined);
      this.pending.set(this.next, read);
      this.held += item.size;
      this.next++;
    }
  }
}
