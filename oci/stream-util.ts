import { type Readable, Transform } from 'node:stream';
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

/** Gathers small chunks into pieces of at least `size` bytes. */
export function coalesceChunks(size: number): Transform {
  let parts: Buffer[] = [];
  let held = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      parts.push(chunk);
      held += chunk.length;
      if (held >= size) {
        this.push(parts.length === 1 ? chunk : Buffer.concat(parts, held));
        parts = [];
        held = 0;
      }
      cb();
    },
    flush(cb) {
      if (held > 0) this.push(Buffer.concat(parts, held));
      cb();
    },
  });
}
