import type { ImageLayer } from './base-image.js';
import type { BuildEvent } from './options.js';
import type { StageState } from './stage-state.js';
import type { LocalStore } from '../store/local-store.js';
import type { CopySource } from '../context/copy-plan.js';
import type { CacheMountLeases } from './cache-mounts.js';

/**
 * A filesystem a step reads from (a stage, an image, a named context or the build context). Its identity is known
 * up front for stages and images (their chain key, their digest), so a cache hit never unpacks them: `open` does.
 */
export interface SourceTree {
  /** Identity of the content when it is known without reading it; absent for local directories (digest the files). */
  key?: string | undefined;
  /** The tree, materialised if needed, with .dockerignore and stat cache for local directories. */
  open(): Promise<CopySource>;
}

/** What the steps of a stage need from the running build. */
export interface StepContext {
  store: LocalStore;
  file: string;
  escape: '\\' | '`';
  epoch: number;
  proxyArgs: ReadonlySet<string>;
  proxyEnv: ReadonlyMap<string, string>;
  /** RUN cache mounts in use by this build's RUNs (sharing modes). */
  cacheMounts: CacheMountLeases;
  signal?: AbortSignal | undefined;
  emit(event: BuildEvent): void;
  /**
   * Runs a step that may change files: a cache hit appends the cached layer (or nothing) without touching the
   * disk; a miss unpacks the stage's rootfs if needed, calls `produce` and records what it made under `key`.
   */
  layerStep(
    state: StageState,
    key: string,
    text: string,
    produce: (rootfs: string, stepId: number) => Promise<ImageLayer | undefined>,
  ): Promise<ImageLayer | undefined>;
  /**
   * layerStep for a step whose key is only known once it has run (its inputs are read while it runs): for when
   * `mayHit` said no lookup could hit. `produce` returns the key with the layer; the result is recorded under it.
   */
  unkeyedLayerStep(
    state: StageState,
    text: string,
    produce: (rootfs: string, stepId: number) => Promise<{ key: string; layer: ImageLayer | undefined }>,
  ): Promise<ImageLayer | undefined>;
  /** Whether a cache lookup could hit now: not with --no-cache, nor without --cache-from on an empty local cache. */
  mayHit(): Promise<boolean>;
  /** Host file holding secret `id`, or undefined when the build has none. */
  secretFile(id: string): Promise<string | undefined>;
  /** A host path for a RUN bind mount from `from` (stage, named context or image; the context when absent). */
  mountSource(from: string | undefined, source: string, writable: boolean, where: string): Promise<{ key: string; open(): Promise<string> }>;
  /** The tree a COPY --from (or the context) reads. */
  copySource(from: string | undefined, where: string): Promise<SourceTree>;
  /** Removes a scratch directory. */
  removeScratch(dir: string): Promise<void>;
}
