import express, { type Express, type Request, type Response } from 'express';
import { FsBlobStore } from '../oci/content/fs-blob-store.js';
import type { Access, AreaRoutes, RegistryDeps, RouteContext, RouteHandler } from './context.js';
import { errorMiddleware, RegistryError, sendError } from './errors.js';
import { drainRequest } from './request-body.js';
import { type RegistryLogger, silentLogger } from './logger.js';
import { ManifestCache } from './manifest-cache.js';
import { checkName, parseRoute, type RegistryRoute } from './routing.js';
import { baseRoutes } from './routes/base.js';
import { blobRoutes } from './routes/blobs.js';
import { catalogRoutes } from './routes/catalog.js';
import { manifestRoutes } from './routes/manifests.js';
import { referrersRoutes } from './routes/referrers.js';
import { tagsRoutes } from './routes/tags.js';
import { uploadRoutes } from './routes/uploads.js';
import { UploadSessions } from './uploads.js';
import { instrumentRequests } from './observability/access-log.js';
import { RegistryMetrics } from './observability/metrics.js';
import { type Lifecycle, opsEndpoints } from './observability/ops-routes.js';

export type { Access, AdmissionHook, Authorizer, RegistryDeps } from './context.js';

const ROUTES: { [A in RegistryRoute['area']]: AreaRoutes<A> } = {
  base: baseRoutes,
  catalog: catalogRoutes,
  blobs: blobRoutes,
  uploads: uploadRoutes,
  manifests: manifestRoutes,
  tags: tagsRoutes,
  referrers: referrersRoutes,
};

/** The registry's express app, plus what a server needs around it. */
export type RegistryApp = Express & {
  /** The upload sessions (startup and periodic cleanup). */
  uploads: UploadSessions;
  /** Resolves once no request handler is running (graceful shutdown, before the database closes). */
  drain(): Promise<void>;
  /** Served at `/metrics`. */
  metrics: RegistryMetrics;
  /** `draining` makes `/readyz` fail (set when a graceful shutdown starts). */
  lifecycle: Lifecycle;
};

/** The express app of the registry: the Distribution API over injected stores (no listen; tests run it in-process). */
export function createApp(deps: RegistryDeps): RegistryApp {
  const logger = deps.logger ?? silentLogger;
  const shared = {
    blobs: deps.blobs,
    metadata: deps.metadata,
    uploads: new UploadSessions({ dir: deps.uploadsDir, metadata: deps.metadata, blobs: deps.blobs, logger, beforeLink: deps.policy && deps.policy.beforeBlob.bind(deps.policy) }),
    cache: deps.manifestCache === false ? undefined : (deps.manifestCache ?? new ManifestCache()),
    admit: deps.admit,
    policy: deps.policy,
    logger,
  };
  const authorize = deps.authorize ?? (async () => undefined);
  const catalogFilter = deps.catalogFilter ?? (async () => true);
  const tokenEndpoint = deps.tokenEndpoint;
  const running = new Set<Promise<void>>();
  const metrics = deps.metrics ?? new RegistryMetrics();
  const lifecycle: Lifecycle = { draining: false };
  const app = Object.assign(express(), {
    metrics,
    lifecycle,
    uploads: shared.uploads,
    drain: async (): Promise<void> => {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  });
  app.disable('x-powered-by');
  app.set('etag', false);
  // Paths are matched by parseRoute (names contain slashes); queries are read through URL.searchParams.
  app.set('query parser', false);
  // Probes and scrapes come first: unauthenticated, neither counted nor access-logged. One middleware for
  // both, since every layer costs the hot path (manifest GET) a router step.
  const blobsDir = deps.blobs instanceof FsBlobStore ? deps.blobs.root : undefined;
  const ops = opsEndpoints({ metrics, metadata: deps.metadata, blobsDir, lifecycle, logger });
  const instrument = instrumentRequests({ metrics, accessLog: deps.accessLog });
  app.use((req, res, next) => {
    if (!ops(req, res, next)) instrument(req, res, next);
  });
  app.use((req, res) => {
    const ctx: RouteContext = {
      ...shared,
      req,
      res,
      url: new URL(req.originalUrl, 'http://registry.invalid'),
      authorize: (access: Access) => authorize(req, access),
      listable: (repository: string) => catalogFilter(req, repository),
    };
    // The token endpoint of token authentication lives beside the API, as a Distribution token server would.
    const handled = tokenEndpoint !== undefined && req.path === '/token' ? tokenEndpoint(req, res) : dispatch(ctx);
    const done = handled.catch(async (err: unknown) => {
      try {
        await fail(req, res, err, logger);
      } catch (sendErr) {
        // Even the error response failed (socket state): drop the connection, never the process.
        logger.error({ err: sendErr, cause: err }, 'could not send an error response');
        res.destroy();
      }
    });
    running.add(done);
    void done.finally(() => running.delete(done));
  });
  app.use(errorMiddleware(logger));
  return app;
}

async function dispatch(ctx: RouteContext): Promise<void> {
  const { req, res } = ctx;
  // § Determining Support and Legacy Docker support HTTP headers: clients look for it on every response.
  res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
  const route = parseRoute(req.path);
  if (!route) {
    throw new RegistryError('UNSUPPORTED', `no endpoint of the OCI Distribution API at ${JSON.stringify(req.path.slice(0, 100))}`, { status: 404 });
  }
  const handler = handlerFor(route, req.method);
  if (!handler) {
    const allow = Object.keys(ROUTES[route.area]).join(', ');
    throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on this endpoint`, { headers: { Allow: allow } });
  }
  if ('name' in route) {
    checkName(route.name);
    await ctx.authorize({ repository: route.name, actions: handler.actions });
  } else {
    await ctx.authorize({ actions: handler.actions });
  }
  await handler.handle(ctx, route);
}

function handlerFor(route: RegistryRoute, method: string): RouteHandler | undefined {
  // Each area's table only ever receives its own route kind; the cast records what the lookup cannot express.
  return (ROUTES[route.area] as AreaRoutes<RegistryRoute['area']>)[method] as RouteHandler | undefined;
}

async function fail(req: Request, res: Response, err: unknown, logger: RegistryLogger): Promise<void> {
  if (req.socket.destroyed && !res.writableEnded) {
    // The client went away (e.g. mid-PATCH); the upload code has already rolled back to the last good offset.
    logger.debug({ err, method: req.method, url: req.originalUrl }, 'client disconnected');
    return;
  }
  // An unread body would be parsed as the next request: drop it first, or close the connection after answering.
  if (!res.headersSent && !(await drainRequest(req))) res.setHeader('Connection', 'close');
  sendError(res, err, logger, req.method);
}
