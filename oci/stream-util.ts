import type { Readable } from 'node:stream';
import { KilnError } from './errors.js';

/** Reads a small stream (manifest, config, token) into memory, refusing more than `limit` bytes. */
export async function readStreamLimited(stream: Readable, limit: number, subject = 'response'): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buf.length;
    if (total > limit) {
      stream.destroy();
      throw new KilnError('TOO_LARGE', `${subject} exceeds ${limit} bytes`);
    }
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

/**
 * Marks `stream`'s errors as handled by whoever consumes it later: a stream handed to a consumer that is
 * still awaiting something (a temp dir, a lock) may fail first (a size or digest mismatch), and an 'error'
 * without a listener would crash the process. The stream keeps the error (`errored`); pipeline(), finished()
 * and async iteration report it when they attach. Returns the stream.
 */
export function holdErrors<T extends Readable>(stream: T): T {
  stream.on('error', () => undefined);
  return stream;
}
