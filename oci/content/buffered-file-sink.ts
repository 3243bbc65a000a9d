import { open } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { BufferedFileWriter } from './buffered-file-writer.js';

/** Where and how a BufferedFileSink writes. */
export interface BufferedFileSinkOptions {
  /** `wx` creates a new file (exclusively); `r+` writes into an existing one. */
  flags: 'wx' | 'r+';
  /** Offset of the first byte (default 0). */
  position?: number;
  /** fsync before the stream finishes. */
  sync: boolean;
  /** Bytes the stream queues before it asks its source to wait. */
  highWaterMark: number;
}

/**
 * A Writable over a BufferedFileWriter: opens the file, hands each chunk to `accept` (counting, hashing, limits)
 * and then to the writer, runs `beforeFinish` once everything arrived, and finishes the writer (fsync when asked),
 * which closes the file. A destroyed sink closes the file once the write in flight settled, not under it.
 */
export abstract class BufferedFileSink extends Writable {
  readonly path: string;
  private readonly sinkOptions: BufferedFileSinkOptions;
  private writer: BufferedFileWriter | undefined;

  constructor(path: string, options: BufferedFileSinkOptions) {
    super({ highWaterMark: options.highWaterMark });
    this.path = path;
    this.sinkOptions = options;
  }

  /** Takes a chunk before it is written; an error returned fails the stream and nothing more is written. */
  protected abstract accept(chunk: Buffer): Error | undefined;

  /** Throws to fail the stream once every chunk arrived (a digest or size mismatch), before the final fsync. */
  protected beforeFinish(): void {}

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, this.sinkOptions.flags, 0o644).then(
      (file) => {
        this.writer = new BufferedFileWriter(file, this.path, this.sinkOptions.position);
        callback();
      },
      (err: Error) => callback(err),
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const refused = this.accept(chunk);
    if (refused) callback(refused);
    else this.writer!.append(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      this.beforeFinish();
    } catch (err) {
      callback(err as Error);
      return;
    }
    this.writer!.finish({ sync: this.sinkOptions.sync }).then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    (this.writer?.discard() ?? Promise.resolve()).then(() => callback(error));
  }
}
