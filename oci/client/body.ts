import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { KilnError } from '../errors.js';

/** Bytes of an error body worth reading: enough for any `{"errors":…}` document, bounded against junk. */
const ERROR_TEXT_LIMIT = 64 * 1024;

/** The response body as a Node stream (an empty one for bodiless responses). */
export function responseStream(res: Response): Readable {
  if (!res.body) return Readable.from([]);
  return Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>);
}

/**
 * A web stream over a Node stream for a fetch request body, pulled one chunk at a time (backpressure).
 * Unlike Readable.toWeb it tells a failure of the source (`onSourceError`) apart from a cancellation by
 * the HTTP client, which only ends the source.
 */
export function toWebStream(source: Readable, onSourceError: (err: unknown) => void): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (err) {
          onSourceError(err);
          controller.error(err);
          return;
        }
        if (next.done) controller.close();
        else controller.enqueue(typeof next.value === 'string' ? Buffer.from(next.value) : (next.value as Uint8Array));
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads a whole body that must stay under `limit` bytes (manifests, token and JSON answers). */
export async function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await discard(res);
    throw new KilnError('TOO_LARGE', `${what} is ${declared} bytes, over the ${limit}-byte limit`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of responseStream(res)) {
    const buf = chunk as Buffer;
    total += buf.length;
    if (total > limit) throw new KilnError('TOO_LARGE', `${what} is over the ${limit}-byte limit`);
    parts.push(buf);
  }
  return Buffer.concat(parts);
}

/** The first 64 KiB of an error body as text; the rest is dropped. */
export async function readErrorText(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  while (total < ERROR_TEXT_LIMIT) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(parts).toString('utf8');
    parts.push(value);
    total += value.length;
  }
  await reader.cancel();
  return Buffer.concat(parts).toString('utf8').slice(0, ERROR_TEXT_LIMIT);
}

/** Releases a body we do not need, so the connection goes back to the pool. */
export async function discard(res: Response): Promise<void> {
  if (res.body && !res.bodyUsed) await res.body.cancel();
}

/** Parses a JSON body of at most `limit` bytes. */
export async function readJson(res: Response, limit: number, what: string): Promise<unknown> {
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
