import type { IncomingMessage } from 'node:http';
import type { Readable, Writable } from 'node:stream';

/** Most bytes of a refused request body read (and dropped) so its answer can be sent on a live connection. */
export const DRAIN_LIMIT = 64 * 1024 * 1024;

/**
 * Reads and drops the rest of a request body. A client still sending when the answer comes and the
 * connection closes sees a reset, not the error: draining first lets it read the 4xx. Resolves false
 * when the body is larger than `limit` or the connection fails (then the connection must be closed).
 */
export function drainRequest(req: IncomingMessage, limit = DRAIN_LIMIT): Promise<boolean> {
  if (req.complete || req.readableEnded) return Promise.resolve(true);
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.resolve(false);
  return new Promise((resolve) => {
    let total = 0;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total <= limit) return;
      req.off('data', onData);
      req.pause();
      resolve(false);
    };
    req.on('data', onData);
    req.once('end', () => resolve(true));
    req.once('error', () => resolve(false));
    req.once('close', () => resolve(req.complete));
    req.resume();
  });
}

/**
 * Pipes a request body into `sink` like stream.pipeline, except that when the sink fails (a chunk longer than its
 * Content-Range) the request is left alive, not destroyed: the error handler then drains it and the client reads
 * the 4xx instead of a reset. The caller waits for the sink to close after a failure.
 */
export function pipeBody(body: Readable, sink: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      body.off('error', settle);
      body.off('close', onClose);
      if (err === undefined) return resolve();
      body.unpipe(sink);
      if (!sink.destroyed) sink.destroy();
      reject(err);
    };
    const onClose = (): void => {
      if (!body.readableEnded) settle(new Error('the request body ended before it was complete'));
    };
    body.on('error', settle);
    body.on('close', onClose);
    sink.on('error', settle);
    sink.on('finish', () => settle());
    body.pipe(sink);
  });
}
