import type { BlobStore } from '../../oci/content/blob-store.js';
import { errorMessage } from '../../oci/errors.js';
import type { MetadataStore } from '../db/metadata-store.js';
import type { RegistryLogger } from '../logger.js';
import type { ManifestCache } from '../manifest-cache.js';
import type { RegistryMetrics } from '../observability/metrics.js';
import type { RetentionRule } from '../retention.js';
import type { GcConfig } from './config.js';
import { collectGarbage, type GcReport, isGcBusy } from './collect.js';

/** What online garbage collection inside `kiln serve` needs. */
export interface GcSchedulerOptions {
  metadata: MetadataStore;
  blobs: BlobStore;
  gc: GcConfig;
  retention: readonly RetentionRule[];
  logger: RegistryLogger;
  metrics: RegistryMetrics;
  /** The server's manifest cache: emptied when a sweep (here or in `kiln gc`) removed tags or manifests. */
  cache?: ManifestCache | undefined;
  /** How often to look for sweeps by other processes (default 2 s). */
  watchMs?: number;
}

/** Online GC and the watcher of other processes' sweeps; `stop` aborts a run in progress and waits for it. */
export interface GcScheduler {
  /** Runs a collection now (tests, admin); resolves with its report, or undefined when one was already running. */
  runNow(): Promise<GcReport | undefined>;
  stop(): Promise<void>;
}

/** Starts collecting every `gc.intervalMs` (when above 0) and watching the database for sweeps of `kiln gc`. */
export function startGcScheduler(options: GcSchedulerOptions): GcScheduler {
  const { metadata, logger, metrics, cache } = options;
  const abort = new AbortController();
  let running: Promise<GcReport | undefined> | undefined;
  let seen: number | undefined;
  let checking: Promise<void> | undefined;

  // A sweep in another process removed tags or manifests this server may have cached: forget them all.
  const watch = (): Promise<void> =>
    metadata.gcGeneration().then(
      (generation) => {
        if (seen !== undefined && generation !== seen) cache?.clear();
        seen = generation;
      },
      (err: unknown) => logger.warn({ err }, 'could not read the garbage collection generation'),
    );
  const check = (): void => {
    checking ??= watch().finally(() => (checking = undefined));
  };
  check();
  const watcher = setInterval(check, options.watchMs ?? 2000);
  watcher.unref();

  const runNow = (): Promise<GcReport | undefined> => {
    if (running || abort.signal.aborted) return Promise.resolve(undefined);
    running = collect().finally(() => (running = undefined));
    return running;
  };
  const collect = async (): Promise<GcReport | undefined> => {
    try {
      // Cached manifests of a swept repository go at once, before the run deletes any of their blobs.
      const onSwept = (repository: string): void => cache?.invalidate(repository);
      const report = await collectGarbage({ metadata, blobs: options.blobs, gracePeriodMs: options.gc.gracePeriodMs, retention: options.retention, signal: abort.signal, onSwept });
      metrics.gcRuns.inc({ result: 'ok' });
      metrics.gcBytesFreed.inc({}, report.bytesFreed);
      metrics.gcBlobsDeleted.inc({}, report.blobs.length);
      metrics.gcManifestsDeleted.inc({}, report.manifests.length);
      metrics.gcTagsDeleted.inc({}, report.tags.length);
      metrics.gcLastSuccess.set(Date.now() / 1000);
      logger.info(
        { tags: report.tags.length, manifests: report.manifests.length, links: report.links.length, blobs: report.blobs.length, bytesFreed: report.bytesFreed, durationMs: report.durationMs },
        'garbage collection finished',
      );
      return report;
    } catch (err) {
      if (abort.signal.aborted) return undefined;
      // Another collector (kiln gc from cron) holds the lock: this run is simply skipped.
      const busy = isGcBusy(err);
      metrics.gcRuns.inc({ result: busy ? 'skipped' : 'error' });
      if (busy) logger.info({ reason: errorMessage(err) }, 'garbage collection skipped');
      else logger.error({ err }, 'garbage collection failed');
      return undefined;
    }
  };

  const timer = options.gc.intervalMs > 0 ? setInterval(() => void runNow(), options.gc.intervalMs) : undefined;
  timer?.unref();

  return {
    runNow,
    async stop() {
      clearInterval(watcher);
      if (timer) clearInterval(timer);
      abort.abort();
      await Promise.allSettled([running, checking]);
    },
  };
}
