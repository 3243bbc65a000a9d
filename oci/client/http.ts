import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/**
 * The registry client's HTTP on node:http rather than fetch: a cold fetch costs ~35 ms before its first
 * response (loading undici) and 2–4 ms per request after, node:http ~10 ms and ~1.3 ms; bodies arrive as
 * plain Node streams, without web-stream adapters on every chunk of a layer.
 */

/** Response headers, read by name (case-insensitive), as fetch's Headers are. */
export interface HttpHeaders {
  get(name: string): string | null;
}

/** A registry response: status, headers and the body as a Node stream (empty for HEAD). */
export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: HttpHeaders;
  /** The URL that answered (after redirects). */
  readonly url: string;
  readonly body: Readable;
}

/** One HTTP exchange. */
export interface HttpRequestInit {
  method: string;
  headers: Record<string, string>;
  /** Bytes, or a stream sent as it is read (with backpressure); a stream body is never replayed on a redirect. */
  body?: Uint8Array | Readable;
  /** Idle time on the socket before the request fails with ETIMEDOUT (default 5 minutes, as undici's). */
  idleTimeoutMs?: number;
}

/** Thrown when a stream body's source fails: the source's error, not the connection's, is the cause. */
export class RequestSourceError extends Error {
  constructor(cause: unknown) {
    super('request body source failed', { cause });
  }
}

const MAX_REDIRECTS = 10;
const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

// Keep-alive pools shared by every transport of the process; idle sockets are unref'd by the agent, so they
// never hold the process open.
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

class NodeHeaders implements HttpHeaders {
  constructor(private readonly raw: IncomingHttpHeaders) {}
  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

class NodeResponse implements HttpResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: HttpHeaders;
  constructor(
    readonly url: string,
    readonly body: IncomingMessage,
  ) {
    this.status = body.statusCode ?? 0;
    this.statusText = body.statusMessage ?? '';
    this.headers = new NodeHeaders(body.headers);
  }
  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }
}

/**
 * Sends a request, following redirects as fetch does for requests without a stream body (303, and 301/302
 * of a POST, become a GET; credentials are dropped when the origin changes). Rejects on connection failures
 * with the socket's error (its `code`: ECONNRESET, ECONNREFUSED, ETIMEDOUT…).
 */
export async function sendHttp(url: URL, init: HttpRequestInit): Promise<HttpResponse> {
  let current = url;
  let { method, headers, body } = init;
  for (let hop = 0; ; hop++) {
    const res = await exchange(current, { ...init, method, headers, body });
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || location === null || body instanceof Readable || hop === MAX_REDIRECTS) return res;
    res.body.resume();
    const next = new URL(location, current);
    if (next.origin !== current.origin) {
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET';
      body = undefined;
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !/^content-(length|type)$/i.test(k)));
    }
    current = next;
  }
}

async function exchange(url: URL, init: HttpRequestInit): Promise<NodeResponse> {
  try {
    return await exchangeOnce(url, init);
  } catch (err) {
    // A keep-alive connection the server closed while idle fails the first write: that request never reached
    // the server, so sending it once more on a fresh connection is safe unless its body was a one-shot stream.
    if (!(err instanceof StaleSocketError) || init.body instanceof Readable) throw err instanceof StaleSocketError ? err.cause : err;
    return exchangeOnce(url, init);
  }
}

class StaleSocketError extends Error {
  constructor(cause: unknown) {
    super('keep-alive connection closed by the server', { cause });
  }
}

function exchangeOnce(url: URL, init: HttpRequestInit): Promise<NodeResponse> {
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:';
    const headers: Record<string, string> = { ...init.headers };
    const body = init.body;
    if (body instanceof Uint8Array) headers['content-length'] = String(body.length);
    else if (body === undefined && init.method !== 'GET' && init.method !== 'HEAD') headers['content-length'] ??= '0';
    const req = (https ? httpsRequest : httpRequest)(url, { method: init.method, headers, agent: https ? agents.https : agents.http });
    // A declared Content-Length must be exactly what is sent (undici checks this by default, node:http only when asked).
    (req as typeof req & { strictContentLength: boolean }).strictContentLength = true;
    let settled = false;
    const fail = (err: unknown): void => {
      if (settled) return;
      settled = true;
      const code = (err as { code?: unknown }).code;
      reject(req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE') ? new StaleSocketError(err) : err);
    };
    req.setTimeout(init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, () => {
      req.destroy(Object.assign(new Error(`no data from ${url.host} for ${(init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS) / 1000} s`), { code: 'ETIMEDOUT' }));
    });
    req.on('error', fail);
    req.on('response', (res) => {
      settled = true;
      // A body nobody reads must not crash the process when its connection drops; readers still get the error.
      res.on('error', () => undefined);
      // A body that cannot hold anything is read now: until its end is read, the keep-alive socket stays busy
      // (and holds the process open), and callers that only look at the status never read it.
      if (init.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304 || res.headers['content-length'] === '0') res.resume();
      // The idle timeout and socket errors also cover the body: a stalled or cut download fails, never hangs.
      req.on('error', (err) => {
        if (!res.complete) res.destroy(err);
      });
      resolve(new NodeResponse(url.href, res));
    });
    if (body instanceof Readable) {
      void pump(body, req);
    } else {
      req.end(body);
    }
  });
}

/**
 * Writes a stream body with backpressure. Unlike pipe(), it survives write()/end() throwing (a declared
 * Content-Length that the source overshoots or falls short of) and tells a failing source apart.
 */
async function pump(body: Readable, req: ClientRequest): Promise<void> {
  const iterator = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (err) {
        req.destroy(new RequestSourceError(err));
        return;
      }
      if (next.done) break;
      if (req.destroyed) break;
      if (!req.write(next.value as Buffer)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            req.off('drain', done);
            req.off('close', done);
            resolve();
          };
          req.on('drain', done);
          req.on('close', done);
        });
      }
    }
    if (!req.destroyed) req.end();
  } catch (err) {
    req.destroy(err as Error);
  } finally {
    await iterator.return?.();
  }
}
