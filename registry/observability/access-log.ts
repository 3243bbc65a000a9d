import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import { parseRoute } from '../routing.js';
import { attachMetrics, type RegistryMetrics } from './metrics.js';

/** The fields of one access log line (JSON). Never a header, query string, password or token. */
export interface AccessLogEntry {
  /** When the response ended (ISO 8601). */
  time: string;
  method: string;
  /** URL path without the query string. */
  path: string;
  /** API area: base, catalog, blobs, uploads, manifests, tags, referrers; `token`; `unknown` for other paths. */
  route: string;
  repository?: string;
  status: number;
  /** Request body bytes received. */
  bytesIn: number;
  /** Response body bytes sent. */
  bytesOut: number;
  durationMs: number;
  /** The authenticated user, when auth named one (`noteUser`). */
  user?: string;
  remote?: string;
  userAgent?: string;
  /** Present when the connection ended before the response did. */
  aborted?: true;
}

/** Receives each access log line, newline included; the CLI writes them to stdout asynchronously. */
export type AccessLogSink = (line: string) => void;

/** Records who made the request, for the access log (auth calls it once a user is authenticated). */
export function noteUser(res: Response, user: string): void {
  res.locals.user = user;
}

/** Options of `instrumentRequests`. */
export interface InstrumentOptions {
  metrics: RegistryMetrics;
  /** Undefined: no access log (`log.accesslog.disabled: true`). */
  accessLog?: AccessLogSink | undefined;
}

/**
 * Middleware counting every request into `metrics` and writing its access log line (an `AccessLogEntry`)
 * when the response ends. Per request: one route parse, a few counter updates, one string; no I/O of its own.
 */
export function instrumentRequests({ metrics, accessLog }: InstrumentOptions): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    const socket = req.socket;
    const readBefore = socket.bytesRead;
    const writtenBefore = socket.bytesWritten;
    attachMetrics(req, metrics);
    const route = parseRoute(req.path);
    const area = route?.area ?? (req.path === '/token' ? 'token' : 'unknown');
    const upload = area === 'uploads' && (req.method === 'POST' || req.method === 'PATCH' || req.method === 'PUT');
    metrics.requestsInFlight.inc();
    if (upload) metrics.uploadsInFlight.inc();
    res.once('close', () => {
      metrics.requestsInFlight.inc({}, -1);
      if (upload) metrics.uploadsInFlight.inc({}, -1);
      const durationMs = performance.now() - started;
      const bytesIn = requestBytes(req, socket.bytesRead - readBefore);
      const bytesOut = responseBytes(req, res, socket.bytesWritten - writtenBefore);
      const status = res.statusCode;
      metrics.requests.inc({ route: area, method: req.method, status });
      metrics.requestBytes.inc({ route: area }, bytesIn);
      metrics.responseBytes.inc({ route: area }, bytesOut);
      metrics.requestDuration.observe(durationMs / 1000, { route: area });
      if (!accessLog) return;
      // Written out field by field: no intermediate object on the hot path, and only free text is escaped.
      const repository = route && 'name' in route ? `,"repository":${JSON.stringify(route.name)}` : '';
      const user = userOf(res);
      const agent = req.headers['user-agent'];
      accessLog(
        `{"time":"${new Date().toISOString()}","method":${JSON.stringify(req.method)},"path":${JSON.stringify(req.path)},"route":"${area}"${repository}` +
          `,"status":${status},"bytesIn":${bytesIn},"bytesOut":${bytesOut},"durationMs":${Math.round(durationMs * 100) / 100}` +
          `${user === undefined ? '' : `,"user":${JSON.stringify(user)}`}${socket.remoteAddress === undefined ? '' : `,"remote":${JSON.stringify(socket.remoteAddress)}`}` +
          `${agent === undefined ? '' : `,"userAgent":${JSON.stringify(agent)}`}${res.writableFinished ? '' : ',"aborted":true'}}\n`,
      );
    });
    next();
  };
}

/** The declared body length once the body was read in full, else what the socket delivered meanwhile. */
function requestBytes(req: IncomingMessage, delivered: number): number {
  const declared = Number(req.headers['content-length']);
  if (req.complete && Number.isSafeInteger(declared) && declared >= 0) return declared;
  return Math.max(0, delivered);
}

/** Content-Length of a completed response (0 for HEAD, 204, 304); else the bytes the socket took, headers included. */
function responseBytes(req: Request, res: Response, written: number): number {
  if (res.writableFinished) {
    if (req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0;
    const length = Number(res.getHeader('content-length'));
    if (Number.isSafeInteger(length) && length >= 0) return length;
  }
  return Math.max(0, written);
}

function userOf(res: Response): string | undefined {
  const user: unknown = res.locals.user;
  return typeof user === 'string' ? user : undefined;
}
