import { once } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { FsBlobStore } from '../oci/content/fs-blob-store.js';
import { errorMessage, KilnError } from '../oci/errors.js';
import { createApp } from './app.js';
import type { AuthFailure } from './auth/access-control.js';
import { checkExposure, setUpAccessControl } from './auth/setup.js';
import { lockDataDir } from './data-lock.js';
import { type RegistryConfig, splitAddr } from './config.js';
import type { AdmissionHook, Authorizer } from './context.js';
import { SqliteMetadataStore } from './db/sqlite-metadata-store.js';
import { startGcScheduler } from './gc/scheduler.js';
import { ManifestCache } from './manifest-cache.js';
import type { AccessLogSink } from './observability/access-log.js';
import { RegistryMetrics } from './observability/metrics.js';
import { type RegistryLogger, silentLogger } from './logger.js';
import { PolicyRules } from './policies/repository-policy.js';

/** What `startServer` needs besides the configuration (the CLI injects the logger; later issues auth and admission). */
export interface ServerOptions {
  logger?: RegistryLogger;
  authorize?: Authorizer;
  admit?: AdmissionHook;
  /** Called on each refused credential, token or access (the auth-failures metric). */
  onAuthFailure?: (failure: AuthFailure) => void;
  /** Signals that trigger a graceful shutdown (the CLI passes SIGTERM and SIGINT); none by default. */
  signals?: NodeJS.Signals[];
  /** How long in-flight requests may run after a shutdown starts before their connections are cut (default 10 s). */
  shutdownGraceMs?: number;
  /** Where access log lines go (the CLI: stdout); unused when the configuration disables the access log. */
  accessLog?: AccessLogSink;
}

/** A listening registry. */
export interface RunningServer {
  /** `http://HOST:PORT` with the port actually bound (for `--addr HOST:0`). */
  url: string;
  /** Data directory in use (absolute). */
  data: string;
  /** Resolves when the server has stopped by `close()` or a signal. */
  closed: Promise<void>;
  /** Stops accepting, lets in-flight requests finish, then closes the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `kiln serve`: sqlite at `<data>/metadata.sqlite`, blobs at `<data>/blobs` (temp files in
 * `<data>/tmp`), uploads at `<data>/uploads`; purges stale uploads and orphan files before listening.
 */
export async function startServer(config: RegistryConfig, options: ServerOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? silentLogger;
  const data = resolve(config.data);
  const { host, port } = splitAddr(config.addr);
  checkExposure(config.addr, host, config.security, logger);
  await mkdir(data, { recursive: true });
  const unlock = await lockDataDir(data);
  let metadata: SqliteMetadataStore | undefined;
  let server: Server | undefined;
  try {
    const tmp = join(data, 'tmp');
    // Temp files of the blob store belong to writes that died with a previous process (the lock says it is gone).
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    const db = await SqliteMetadataStore.open(join(data, 'metadata.sqlite'));
    metadata = db;
    const blobs = new FsBlobStore({ root: join(data, 'blobs'), tmpDir: tmp });
    const metrics = new RegistryMetrics();
    const onAuthFailure = (failure: AuthFailure): void => {
      metrics.authFailures.inc({ reason: failure.reason });
      options.onAuthFailure?.(failure);
    };
    const access = await setUpAccessControl({ security: config.security, data, logger, onAuthFailure });
    const policy = config.security.policies.length > 0 ? new PolicyRules(config.security.policies, db) : undefined;
    // Created here so garbage collection (in this process or in `kiln gc`) can empty it.
    const cache = new ManifestCache();
    const accessLog = config.accessLog ? options.accessLog : undefined;
    const app = createApp({ blobs, metadata: db, uploadsDir: join(data, 'uploads'), logger, ...access, authorize: options.authorize ?? access.authorize, admit: options.admit, policy, manifestCache: cache, metrics, accessLog });
    const purged = await app.uploads.cleanup({ maxAgeMs: config.uploadMaxAgeMs, orphans: true });
    if (purged.sessions + purged.files > 0) logger.info(purged, 'purged stale uploads');
    const listening = createServer(app);
    server = listening;
    // An empty host (`:5000`, as Distribution writes it) means every interface (checkExposure decided it may).
    listening.listen(port, host === '' ? undefined : host);
    try {
      await once(listening, 'listening');
    } catch (err) {
      throw new KilnError('NETWORK', `cannot listen on ${config.addr}: ${errorMessage(err)}`, { cause: err });
    }
    const purge = setInterval(() => {
      app.uploads.cleanup({ maxAgeMs: config.uploadMaxAgeMs }).then(
        (r) => {
          if (r.sessions > 0) logger.info(r, 'purged stale uploads');
        },
        (err: unknown) => logger.error({ err }, 'upload purge failed'),
      );
    }, config.uploadPurgeIntervalMs);
    purge.unref();
    const address = listening.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${shown}:${address.port}`;
    const gc = startGcScheduler({ metadata: db, blobs, gc: config.gc, retention: config.retention, logger, metrics, cache });
    const shutdown = async (): Promise<void> => {
      for (const s of options.signals ?? []) process.off(s, onSignal);
      app.lifecycle.draining = true;
      clearInterval(purge);
      // A collection in progress stops at its next step; the database stays open until it has.
      const collected = gc.stop();
      const stopped = new Promise<void>((r) => listening.close(() => r()));
      // Node closes idle keep-alive connections itself; busy ones get the grace period.
      const grace = setTimeout(() => listening.closeAllConnections(), options.shutdownGraceMs ?? 10_000);
      await stopped;
      clearTimeout(grace);
      await app.drain();
      await collected;
      await db.close();
      await unlock();
      logger.info({ url }, 'stopped');
    };
    let finished!: { resolve: () => void; reject: (err: unknown) => void };
    const closed = new Promise<void>((resolve, reject) => (finished = { resolve, reject }));
    // Logged here so a failed shutdown is never an unhandled rejection; whoever awaits `closed` still gets it.
    closed.catch((err: unknown) => logger.error({ err }, 'shutdown failed'));
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= shutdown().then(finished.resolve, (err: unknown) => {
        finished.reject(err);
        throw err;
      });
      return closing;
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      logger.info({ signal }, 'shutting down');
      // A failure is reported through `closed` (and logged above).
      close().catch(() => undefined);
    };
    for (const s of options.signals ?? []) process.on(s, onSignal);
    logger.info({ url, data }, 'listening');
    return { url, data, closed, close };
  } catch (err) {
    server?.close();
    await metadata?.close();
    await unlock();
    throw err;
  }
}
