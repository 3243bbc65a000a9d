import type { ServerResponse } from 'node:http';
import { open } from 'node:fs/promises';
import { KilnError } from '../oci/errors.js';

/** Read size: large reads keep the syscalls per blob few; two buffers, so one is read while the other is sent. */
const CHUNK = 1 << 20;

/**
 * Sends `length` bytes of the file at `path` from `start` as the response body and ends it. A stream of the file
 * would allocate a new 1 MiB buffer per read, and collecting those was half of the server's CPU per pull; here
 * two buffers are reused, each read into again only once the socket has taken what was sent from it.
 */
export async function sendFileBody(res: ServerResponse, path: string, start: number, length: number): Promise<void> {
  const file = await open(path, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(Math.min(CHUNK, length)), Buffer.allocUnsafe(Math.min(CHUNK, length))];
    const sent: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
    const closed = closedEarly(res);
    for (let position = start, end = start + length, i = 0; position < end; i ^= 1) {
      await Promise.race([sent[i], closed.promise]);
      const buffer = buffers[i]!;
      const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - position), position);
      if (bytesRead === 0) throw new KilnError('BLOB_UNKNOWN', `blob file ${path} ended ${end - position} bytes short of its size`);
      position += bytesRead;
      const sending = write(res, buffer.subarray(0, bytesRead));
      sending.catch(() => undefined); // Awaited a turn later; a reset before then must not count as unhandled.
      sent[i] = sending;
    }
    await Promise.race([Promise.all(sent), closed.promise]);
    closed.dispose();
    res.end();
  } finally {
    await file.close();
  }
}

/** Resolves once the socket has taken `chunk` (its buffer may then be reused). */
function write(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    res.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Rejects when the client goes away before the body is sent, so a pending write cannot keep the file open. */
function closedEarly(res: ServerResponse): { promise: Promise<never>; dispose: () => void } {
  let onClose = (): void => undefined;
  const promise = new Promise<never>((_, reject) => {
    onClose = () => reject(new KilnError('NETWORK', 'the client closed the connection before the blob was sent'));
    res.once('close', onClose);
  });
  promise.catch(() => undefined);
  return { promise, dispose: () => res.off('close', onClose) };
}
