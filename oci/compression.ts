import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip, constants as zlibConstants } from 'node:zlib';
import { Decompress } from 'fzstd';
import { KilnError } from './errors.js';
import { layerCompression } from './media-types.js';

/** Bytes of output per inflate call (see decompressStream). */
const GUNZIP_CHUNK = 256 << 10;

/** Compression of a layer or archive stream. */
export type Compression = 'gzip' | 'zstd' | 'none';

const GZIP_MAGIC = [0x1f, 0x8b];
/** Zstandard frame magic 0xFD2FB528, little-endian (RFC 8878 § 3.1.1). */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Compression named by `kind`: 'gzip' | 'zstd' | 'none' as is, anything else read as a layer media type. */
export function compressionOf(kind: string): Compression {
  if (kind === 'gzip' || kind === 'zstd' || kind === 'none') return kind;
  return layerCompression(kind);
}

/** Compression identified by the magic number at the start of a stream ('none' when unrecognised). */
export function detectCompression(firstBytes: Uint8Array): Compression {
  const starts = (magic: number[]): boolean =>
    firstBytes.length >= magic.length && magic.every((b, i) => firstBytes[i] === b);
  if (starts(GZIP_MAGIC)) return 'gzip';
  if (starts(ZSTD_MAGIC)) return 'zstd';
  return 'none';
}

/** Transform that decompresses `kind` (a media type, or 'gzip' | 'zstd' | 'none'); errors are KilnError('VALIDATION'). */
export function decompressStream(kind: string): Transform {
  const compression = compressionOf(kind);
  if (compression === 'none') return new PassThrough();
  if (compression === 'zstd') return new ZstdDecompressStream();
  // 256 KiB output chunks, not zlib's 16 KiB: each chunk is a thread-pool round trip, and with 16 KiB a layer
  // inflates at half the speed (a 470 MiB base layer: 2.1 s → 0.86 s here).
  return withTypedErrors(createGunzip({ chunkSize: GUNZIP_CHUNK }), 'gzip');
}

/** Transform that gzip-compresses (level 6 by default, as docker and containerd do). */
export function gzipStream(options: { level?: number } = {}): Transform {
  return createGzip({ level: options.level ?? zlibConstants.Z_DEFAULT_COMPRESSION });
}

/** Pass-through that fails with TOO_LARGE once more than `max` bytes have flowed (a decompression-bomb stop). */
export function byteLimit(max: number, subject: string): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      total += chunk.length;
      if (total > max) cb(new KilnError('TOO_LARGE', `${subject} is larger than ${max} bytes`));
      else cb(null, chunk);
    },
  });
}

/** Streaming zstd reader over fzstd, which decodes synchronously inside `push`. */
class ZstdDecompressStream extends Transform {
  private readonly decoder: Decompress;
  private sawInput = false;

  constructor() {
    super();
    this.decoder = new Decompress((data) => {
      if (data.length > 0) this.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length > 0) this.sawInput = true;
    cb(this.run(() => this.decoder.push(chunk, false)));
  }

  override _flush(cb: TransformCallback): void {
    // An empty input is not a zstd stream; fzstd would accept it silently.
    if (!this.sawInput) {
      cb(new KilnError('VALIDATION', 'zstd stream is empty'));
      return;
    }
    cb(this.run(() => this.decoder.push(new Uint8Array(0), true)));
  }

  private run(step: () => void): KilnError | null {
    try {
      step();
      return null;
    } catch (err) {
      return new KilnError('VALIDATION', `invalid zstd data: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Re-raises zlib's errors (emitted through `_destroy`) as typed ones, keeping the original as the cause. */
function withTypedErrors(stream: Transform, name: string): Transform {
  const original = stream._destroy.bind(stream);
  stream._destroy = (err: Error | null, cb: (error?: Error | null) => void): void => {
    original(err, (e?: Error | null) =>
      cb(e && !(e instanceof KilnError) ? new KilnError('VALIDATION', `invalid ${name} data: ${e.message}`, { cause: e }) : e),
    );
  };
  return stream;
}
