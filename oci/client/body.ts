import { Readable } from 'node:stream';
import { KilnError } from '../errors.js';
import type { HttpResponse } from './http.js';

/** Bytes of an error body worth reading: enough for any `{"errors":…}` document, bounded against junk. */
const ERROR_TEXT_LIMIT = 64 * 1024;

/** Reads a whole body that must stay under `limit` bytes (manifests, token and JSON answers). */
export async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await discard(res);
    throw new KilnError('TOO_LARGE', `${what} is ${declared} bytes, over the ${limit}-byte limit`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) throw new KilnError('TOO_LARGE', `${what} is over the ${limit}-byte limit`);
    parts.push(buf);
  }
  return Buffer.concat(parts);
}

/** The first 64 KiB of an error body as text; the rest is dropped. */
export async function readErrorText(res: HttpResponse): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    parts.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total >= ERROR_TEXT_LIMIT) {
      res.body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).toString('utf8').slice(0, ERROR_TEXT_LIMIT);
}

/** Bodies up to this size are read to their end so the connection is reused; larger ones close it. */
const DRAIN_LIMIT = 256 * 1024;

/** Releases a body we do not need, so the connection goes back to the pool (or closes, for a large body). */
export async function discard(res: HttpResponse): Promise<void> {
  const body = res.body;
  if (body.readableEnded || body.destroyed) return;
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (!(declared <= DRAIN_LIMIT)) {
    body.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    body.once('end', resolve);
    body.once('close', resolve);
    body.once('error', () => resolve());
    body.resume();
  });
}

/** Parses a JSON body of at most `limit` bytes. */
export async function readJson(res: HttpResponse, limit: number, what: string): Promise<unknown> {
  const bytes = await readLimited(res, limit, what);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('REGISTRY', `${what} is not valid JSON`, { cause: err });
  }
}

/**
 * Reads a stream as consecutive slices, each itself a stream, holding at most one source chunk:
 * a chunked upload sends each PATCH body straight from the source instead of buffering it.
 */
export class StreamSlicer {
  private readonly source: Readable;
  private readonly iterator: AsyncIterator<unknown>;
  private leftover: Buffer | undefined;

  constructor(source: Readable) {
    this.source = source;
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** A stream of the next `length` bytes; shorter when the source ends first. Read each slice to its end before the next. */
  slice(length: number): Readable {
    const pull = (): Promise<Buffer | undefined> => this.pull();
    const keep = (rest: Buffer): void => {
      this.leftover = rest;
    };
    async function* bytes(): AsyncGenerator<Buffer> {
      let remaining = length;
      while (remaining > 0) {
        const buf = await pull();
        if (!buf) return;
        if (buf.length > remaining) {
          keep(buf.subarray(remaining));
          yield buf.subarray(0, remaining);
          return;
        }
        remaining -= buf.length;
        yield buf;
      }
    }
    return Readable.from(bytes(), { objectMode: false });
  }

  /** True when bytes remain after the slices read so far. */
  async hasMore(): Promise<boolean> {
    const buf = await this.pull();
    if (buf) this.leftover = buf;
    return buf !== undefined;
  }

  /** Stops reading the source (after a failure). */
  destroy(err?: Error): void {
    this.source.destroy(err);
  }

  private async pull(): Promise<Buffer | undefined> {
    if (this.leftover) {
      const buf = this.leftover;
      this.leftover = undefined;
      return buf;
    }
    for (;;) {
      const next = await this.iterator.next();
      if (next.done) return undefined;
      const buf = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
      if (buf.length > 0) return buf;
    }
  }
}
