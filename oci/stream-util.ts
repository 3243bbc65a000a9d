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
