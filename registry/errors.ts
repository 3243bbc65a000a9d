import type { ErrorRequestHandler, Response } from 'express';
import { type DistributionErrorCode, isKilnError, KilnError, type KilnErrorCode } from '../oci/errors.js';
import type { RegistryLogger } from './logger.js';

/** One entry of a Distribution error body (distribution-spec § Error Codes). */
export interface ErrorEntry {
  /** A spec code; `UNKNOWN` (as CNCF Distribution names it) only on a 500. */
  code: DistributionErrorCode | 'UNKNOWN';
  message: string;
  detail?: unknown;
}

/** What an error becomes on the wire. */
export interface HttpError {
  status: number;
  body: { errors: ErrorEntry[] };
  /** Extra response headers (Range on a 416, Allow on a 405, Connection: close on a 413). */
  headers: Record<string, string>;
}

/** The usual status of each spec code (distribution-spec § Error Codes; 416 from § Pushing a blob in chunks). */
const STATUS: Record<DistributionErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  RANGE_INVALID: 416,
};

/** Kiln's own codes that describe bad client input, with the spec code and status they answer as. */
const OWN: Partial<Record<KilnErrorCode, [DistributionErrorCode, number]>> = {
  DIGEST_MISMATCH: ['DIGEST_INVALID', 400],
  SIZE_MISMATCH: ['SIZE_INVALID', 400],
  TOO_LARGE: ['SIZE_INVALID', 413],
  AUTH_FAILED: ['UNAUTHORIZED', 401],
};

/** Spec descriptions (§ Error Codes), used when an error's own message is not fit for clients. */
const DESCRIPTION: Record<DistributionErrorCode, string> = {
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  UNSUPPORTED: 'the operation is unsupported',
  TOOMANYREQUESTS: 'too many requests',
  RANGE_INVALID: 'requested range not satisfiable',
};

/** Statuses a registry error may take instead of its code's usual one. */
export type StatusOverride = 400 | 404 | 405 | 413 | 415 | 416;

/**
 * An error the registry itself raises while answering a request: its message is written for the
 * client (never a filesystem path), and it may carry response headers or an unusual status.
 */
export class RegistryError extends KilnError<DistributionErrorCode> {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(code: DistributionErrorCode, message: string, options: { detail?: unknown; status?: StatusOverride; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(code, message, { detail: options.detail, cause: options.cause });
    this.name = 'RegistryError';
    this.status = options.status ?? STATUS[code];
    this.headers = options.headers ?? {};
  }
}

/** Codes whose messages come from validating client input in oci/ (parseDigest, parseManifest, VerifyingStream). */
const CLIENT_MESSAGE_CODES: ReadonlySet<KilnErrorCode> = new Set(['DIGEST_INVALID', 'MANIFEST_INVALID', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'TOO_LARGE']);

/** Maps any thrown value to a status and a spec error body; `internal` is true for 5xx (to be logged). */
export function toHttpError(err: unknown): HttpError & { internal: boolean } {
  if (err instanceof RegistryError) {
    return { status: err.status, headers: err.headers, body: body(err.code, err.message, err.detail), internal: false };
  }
  if (isKilnError(err)) {
    const own = OWN[err.code];
    const [code, status] = own ?? (err.code in STATUS ? [err.code as DistributionErrorCode, STATUS[err.code as DistributionErrorCode]] : [undefined, 500]);
    if (code !== undefined) {
      // Messages of other oci/ errors (the blob store's) may name files on disk: clients get the spec's wording.
      const message = CLIENT_MESSAGE_CODES.has(err.code) ? withoutPaths(err.message) : DESCRIPTION[code];
      return { status, headers: {}, body: body(code, message, err.detail), internal: false };
    }
  }
  // § Error Codes covers 4XX only: a 500 says UNKNOWN with a generic message; details go to the log only.
  return { status: 500, headers: {}, body: { errors: [{ code: 'UNKNOWN', message: 'internal server error' }] }, internal: true };
}

/** Writes `err` as a Distribution error response (no body on HEAD), logging unexpected failures. */
export function sendError(res: Response, err: unknown, logger: RegistryLogger, method: string): void {
  const http = toHttpError(err);
  if (http.internal) logger.error({ err, method, url: res.req.originalUrl }, 'request failed');
  else logger.debug({ code: http.body.errors[0]?.code, status: http.status, url: res.req.originalUrl }, 'request refused');
  if (res.headersSent) {
    // Part of a body (a blob) is already on the wire: only cutting the connection tells the client.
    res.destroy();
    return;
  }
  res.status(http.status);
  for (const [name, value] of Object.entries(http.headers)) res.setHeader(name, value);
  if (method === 'HEAD') {
    res.end();
    return;
  }
  res.json(http.body);
}

/** express error middleware for what escapes a route (malformed requests rejected by express itself). */
export function errorMiddleware(logger: RegistryLogger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => sendError(res, err, logger, req.method);
}

function body(code: DistributionErrorCode, message: string, detail: unknown): { errors: ErrorEntry[] } {
  const entry: ErrorEntry = { code, message };
  if (detail !== undefined) entry.detail = detail;
  return { errors: [entry] };
}

/** Defence in depth: an absolute path that slipped into a message is replaced, so storage layout never leaks. */
function withoutPaths(message: string): string {
  return message.replace(/(^|[\s"'(=])\/(?:[^\s"'/]+\/)+[^\s"')]*/g, '$1<path>');
}
