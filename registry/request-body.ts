import type { IncomingMessage } from 'node:http';

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
