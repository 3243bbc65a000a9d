import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { errorMessage } from '../../oci/errors.js';
import type { MetadataStore } from '../db/metadata-store.js';
import type { RegistryLogger } from '../logger.js';
import type { RegistryMetrics } from './metrics.js';

/** Whether the server still takes traffic: set when a graceful shutdown starts, so /readyz fails first. */
export interface Lifecycle {
  draining: boolean;
}

/** What the operational endpoints look at. */
export interface OpsOptions {
  metrics: RegistryMetrics;
  metadata: MetadataStore;
  /** Directory blobs are written to; undefined when the blob store is not on the filesystem. */
  blobsDir: string | undefined;
  lifecycle: Lifecycle;
  logger: RegistryLogger;
}

/** How long a readiness check may take before it counts as failed. */
const CHECK_TIMEOUT_MS = 2000;

/**
 * `GET /healthz` (liveness: the process answers), `GET /readyz` (the database answers a trivial query,
 * the blob directory is writable, no shutdown under way) and `GET /metrics` (Prometheus text format).
 * Unauthenticated, as probes and scrapers expect; they expose no repository names, and check failures
 * are described in the server log, not in the response. Returns true when it took the request.
 */
export function opsEndpoints(options: OpsOptions): (req: Request, res: Response, next: NextFunction) => boolean {
  return (req, res, next) => {
    // API requests (/v2/…) leave at the first character compared.
    const url = req.url;
    if (url.charCodeAt(1) === 0x76 || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const head = req.method === 'HEAD';
    switch (req.path) {
      case '/healthz':
        send(res, 200, 'application/json', '{"status":"ok"}\n', head);
        return true;
      case '/readyz':
        void readiness(options).then(
          (r) => send(res, r.ready ? 200 : 503, 'application/json', `${JSON.stringify({ status: r.ready ? 'ok' : 'unavailable', checks: r.checks })}\n`, head),
          next,
        );
        return true;
      case '/metrics':
        void scrape(options).then((text) => send(res, 200, 'text/plain; version=0.0.4; charset=utf-8', text, head), next);
        return true;
      default:
        return false;
    }
  };
}

async function readiness(options: OpsOptions): Promise<{ ready: boolean; checks: Record<string, string> }> {
  // Keys in a fixed order, whichever check finishes first.
  const checks: Record<string, string> = { database: 'pending', storage: 'pending' };
  const run = async (name: string, check: () => Promise<unknown>): Promise<void> => {
    try {
      await withTimeout(check(), name);
      checks[name] = 'ok';
    } catch (err) {
      options.logger.warn({ check: name, err }, 'readiness check failed');
      checks[name] = 'failed';
    }
  };
  await Promise.all([
    run('database', () => options.metadata.listRepositories({ n: 0 })),
    run('storage', () => writable(options.blobsDir)),
  ]);
  if (options.lifecycle.draining) checks.shutdown = 'in progress';
  return { ready: !options.lifecycle.draining && Object.values(checks).every((c) => c === 'ok'), checks };
}

/** The blob directory, or while it does not exist yet the directory it will be created in, is writable. */
async function writable(dir: string | undefined): Promise<void> {
  if (dir === undefined) return;
  try {
    await access(dir, constants.W_OK);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw err;
    await access(dirname(dir), constants.W_OK);
  }
}

async function scrape(options: OpsOptions): Promise<string> {
  try {
    options.metrics.uploadSessions.set((await withTimeout(options.metadata.listStaleUploads(Number.MAX_SAFE_INTEGER), 'upload sessions')).length);
  } catch (err) {
    // The other series are still worth serving; the gauge keeps its last value.
    options.logger.warn({ err: errorMessage(err) }, 'could not count upload sessions for /metrics');
  }
  return options.metrics.registry.render();
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function send(res: Response, status: number, type: string, body: string, head: boolean): void {
  res.status(status);
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(head ? undefined : body);
}
