import { digestAlgorithm, Digester, mismatchError, oversizeError, type Digest, type VerifyOptions } from '../digest.js';
import { KilnError } from '../errors.js';
import { BufferedFileSink } from './buffered-file-sink.js';

/** Bytes the stream queues before it asks its source to wait: a few network chunks beyond the buffer filling. */
const QUEUE_BYTES = 1 << 20;

/** What the bytes must be (digest checked at the end; more than expectedSize fails at once) and their name in errors. */
export type FileSinkOptions = Omit<VerifyOptions, 'countOnly' | 'algorithm'>;

/**
 * A Writable that hashes, counts and writes what it receives to a new file (created exclusively) through a
 * BufferedFileWriter (256 KiB writes from two reused buffers, background fdatasync). It fails on finish unless the
 * size and digest are as expected, and fsyncs the file before it finishes; the caller renames it into place and
 * removes it on failure. One stage instead of a hashing transform, a coalescing transform and a file stream: a
 * third of the per-chunk work, and no garbage buffer per write.
 */
export class FileSink extends BufferedFileSink {
  private readonly options: FileSinkOptions;
  private readonly digester: Digester;
  private actual: Digest | undefined;

  constructor(path: string, options: FileSinkOptions = {}) {
    super(path, { flags: 'wx', sync: true, highWaterMark: QUEUE_BYTES });
    this.options = options;
    this.digester = new Digester(options.expected ? digestAlgorithm(options.expected) : 'sha256');
  }

  /** The digest of what was written; set once the stream finished without error. */
  get digest(): Digest {
    if (this.actual === undefined || !this.writableFinished) throw new KilnError('INTERNAL', 'FileSink digest read before the stream finished');
    return this.actual;
  }

  get size(): number {
    return this.digester.size;
  }

  protected override accept(chunk: Buffer): Error | undefined {
    this.digester.update(chunk);
    return oversizeError(this.options, this.digester.size);
  }

  protected override beforeFinish(): void {
    this.actual = this.digester.digest();
    const mismatch = mismatchError(this.options, this.digester.size, this.actual);
    if (mismatch) throw mismatch;
  }
}
