import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, KilnError } from '../errors.js';
import { isLoopbackRegistry } from '../reference.js';
import type { Authenticator } from './auth.js';
import { discard } from './body.js';
import { RequestSourceError, sendHttp, type HttpResponse } from './http.js';

/** HTTP methods of the Distribution API. */
export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** A request body: bytes, or a factory returning a fresh stream for each attempt. */
export type RequestBody = Uint8Array | (() => Readable | Promise<Readable>);

/** One request to the registry. */
export interface TransportRequest {
  method: HttpMethod;
  /** A path under the registry root (`/v2/…`) or an absolute URL from a Location or Link header. */
  url: string | URL;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Token scopes the request needs (scope.ts). */
  scopes: readonly string[];
  /** Repository named in authentication errors. */
  repository?: string;
  /** Retry on 5xx, 429 and connection resets; defaults to true for idempotent methods without a stream body. */
  retry?: boolean;
}

/** What `onRequest` observers see: never headers, so never a secret. */
export interface RequestEvent {
  method: string;
  url: string;
  status?: number;
  attempt: number;
  error?: string;
}

/** Options of a transport to one registry. */
export interface TransportOptions {
  registry: string;
  /** Plain HTTP for a registry that is not loopback. */
  insecure?: boolean;
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  userAgent?: string;
  /** Base delay of the exponential backoff in ms (default 250). */
  retryBaseMs?: number;
  onRequest?: (event: RequestEvent) => void;
}

/** User-Agent sent unless the caller names another. */
export const DEFAULT_USER_AGENT = 'kiln/0.1';

const IDEMPOTENT: ReadonlySet<HttpMethod> = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
// Transient socket failures; ECONNREFUSED and DNS failures are not: nothing is listening, retrying only delays the error.
const RETRYABLE_NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED']);
const MAX_DELAY_MS = 30_000;
/** Longest Retry-After we wait out; beyond it the 429/503 is reported instead. */
const MAX_RETRY_AFTER_MS = 60_000;

/** `https://HOST` for a registry, `http://` for loopback or when `insecure`; docker.io is served by registry-1.docker.io. */
export function registryBaseUrl(registry: string, insecure = false): URL {
  const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
  return new URL(`${insecure || isLoopbackRegistry(registry) ? 'http' : 'https'}://${host}`);
}

/** Exponential backoff with jitter for retry `attempt` (0-based), or the server's Retry-After when given. */
export function backoffDelay(attempt: number, baseMs: number, retryAfter?: string | null): number | undefined {
  if (retryAfter) {
    const seconds = Number(retryAfter);
    const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms)) return ms > MAX_RETRY_AFTER_MS ? undefined : Math.max(0, ms);
  }
  const ceiling = Math.min(MAX_DELAY_MS, baseMs * 2 ** attempt);
  // "Equal jitter": half fixed, half random, so clients that failed together do not retry together.
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** The error code of a network failure (on the error or, wrapped, on one of its causes). */
function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** True when `err` is a transient network failure worth retrying. */
export function isRetryableNetworkError(err: unknown): boolean {
  if (err instanceof KilnError) return err.code === 'NETWORK' && (err.detail as { retryable?: boolean } | undefined)?.retryable === true;
  const code = networkCode(err);
  return code !== undefined && RETRYABLE_NETWORK.has(code);
}

/** True for statuses a retry may cure: 429 and 5xx except 501 (not implemented stays not implemented). */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status !== 501);
}

/**
 * HTTP to one registry: base URL, User-Agent, authentication (through the Authenticator) and
 * retries with backoff. Returns every response that is not a 401; callers map statuses to errors.
 */
export class Transport {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  private readonly userAgent: string;
  private readonly onRequest: ((event: RequestEvent) => void) | undefined;
  private auth: Authenticator | undefined;

  constructor(options: TransportOptions) {
    this.registry = options.registry;
    this.baseUrl = registryBaseUrl(options.registry, options.insecure);
    this.maxRetries = options.maxRetries ?? 4;
    this.retryBaseMs = options.retryBaseMs ?? 250;
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.onRequest = options.onRequest;
  }

  /** Attaches the authenticator; separate from the constructor because it sends its token requests through this transport. */
  useAuthenticator(auth: Authenticator): void {
    this.auth = auth;
  }

  /** Resolves a path or Location/Link value against the registry (or against `base`). */
  url(pathOrUrl: string | URL, base: URL = this.baseUrl): URL {
    return new URL(pathOrUrl, base);
  }

  /** Sends a registry request, answering one 401 challenge; throws UNAUTHORIZED/AUTH_FAILED/DENIED when that fails. */
  async request(req: TransportRequest): Promise<HttpResponse> {
    const url = this.url(req.url);
    const retry = req.retry ?? (IDEMPOTENT.has(req.method) && typeof req.body !== 'function');
    // Credentials go only to the registry's own origin, never to a host a Location header points at.
    const sameOrigin = url.origin === this.baseUrl.origin;
    for (let authAttempt = 0; ; authAttempt++) {
      const sent = sameOrigin && this.auth ? await this.auth.authorization(req.scopes) : undefined;
      const headers: Record<string, string> = { ...req.headers };
      if (sent) headers.authorization = sent;
      const res = await this.send(url, { method: req.method, headers, body: req.body }, retry);
      if (res.status !== 401 || !this.auth || !sameOrigin) return res;
      const challenge = res.headers.get('www-authenticate');
      await discard(res);
      if (authAttempt > 0) throw await this.auth.rejected(req.scopes, req.repository);
      await this.auth.challenge(challenge, req.scopes, { repository: req.repository, sent });
    }
  }

  /** Sends with retries but without registry authentication (token requests use it too). */
  async send(url: URL, init: { method: string; headers?: Record<string, string>; body?: RequestBody }, retry: boolean): Promise<HttpResponse> {
    const attempts = retry ? this.maxRetries + 1 : 1;
    for (let attempt = 0; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.sendOnce(url, init);
      } catch (err) {
        this.onRequest?.({ method: init.method, url: url.href, attempt, error: errorMessage(err) });
        if (err instanceof RequestSourceError) throw err.cause;
        const wrapped = this.networkError(err, init.method, url);
        if (attempt + 1 < attempts && isRetryableNetworkError(wrapped)) {
          await sleep(backoffDelay(attempt, this.retryBaseMs) ?? 0);
          continue;
        }
        throw wrapped;
      }
      this.onRequest?.({ method: init.method, url: url.href, status: res.status, attempt });
      if (attempt + 1 < attempts && isRetryableStatus(res.status)) {
        const delay = backoffDelay(attempt, this.retryBaseMs, res.headers.get('retry-after'));
        if (delay !== undefined) {
          await discard(res);
          await sleep(delay);
          continue;
        }
      }
      return res;
    }
  }

  private async sendOnce(url: URL, init: { method: string; headers?: Record<string, string>; body?: RequestBody }): Promise<HttpResponse> {
    const headers = { 'user-agent': this.userAgent, ...init.headers };
    const body = typeof init.body === 'function' ? await init.body() : init.body;
    return sendHttp(url, { method: init.method, headers, body });
  }

  private networkError(err: unknown, method: string, url: URL): KilnError {
    if (err instanceof KilnError) return err;
    // A request body stream that failed (e.g. a source that is not what its descriptor says) surfaces as the cause.
    for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
      if (e instanceof KilnError) return e;
    }
    const code = networkCode(err) ?? 'unknown';
    if (code === 'ERR_HTTP_CONTENT_LENGTH_MISMATCH') {
      // The source stream was shorter or longer than the declared size; noticed before the registry did.
      return new KilnError('SIZE_MISMATCH', `data sent to registry ${this.registry} (${method} ${url.pathname}) is not the size its descriptor declares`, { cause: err });
    }
    const raw = err instanceof Error && err.cause instanceof Error ? err.cause.message : errorMessage(err);
    // OpenSSL's text for a plain-HTTP answer to a TLS hello names its source files; one line says what happened.
    const detailText = /wrong version number|packet length too long|http request/i.test(raw) ? 'TLS handshake failed: the server did not answer in TLS' : raw;
    const hint = code === 'ECONNREFUSED'
      ? `is the registry running at ${this.baseUrl.host}?`
      : code.startsWith('ERR_TLS') || code.includes('CERT') || /ssl|tls/i.test(detailText)
        ? 'if the registry serves plain HTTP, use --insecure'
        : undefined;
    return new KilnError('NETWORK', `cannot reach registry ${this.registry} (${method} ${url.origin}${url.pathname}): ${detailText}`, {
      cause: err,
      hint,
      detail: { retryable: RETRYABLE_NETWORK.has(code), networkCode: code },
    });
  }
}
