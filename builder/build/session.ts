import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Platform } from '../../oci/descriptor.js';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { digestCopyInputs } from '../context/copy-plan.js';
import { resolveInRoot } from '../context/resolve.js';
import { StatCache } from '../context/stat-cache.js';
import type { CachedStep } from '../store/build-cache.js';
import type { RemoteCache } from '../store/cache-transfer.js';
import type { Dockerfile } from '../dockerfile/parser.js';
import { resolveBaseImage, type ImageLayer, type ImageSources } from './base-image.js';
import type { BuildEvent, BuildOptions } from './options.js';
import { CacheMountLeases } from './cache-mounts.js';
import { stageRef } from './stage-graph.js';
import { StageState } from './stage-state.js';
import type { SourceTree, StepContext } from './step-context.js';

/** The running build's shared services for its steps: cache, sources, secrets, progress, cleanup. */
export class BuildSession implements StepContext {
  readonly store: BuildOptions['store'];
  readonly signal: AbortSignal | undefined;
  readonly cacheMounts = new CacheMountLeases();
  private stepIds = 0;
  private cached = 0;
  private readonly states: StageState[] = [];
  private readonly scratchDirs = new Set<string>();
  private readonly statCaches = new Map<string, Promise<StatCache>>();
  private secretsDir: string | undefined;
  private readonly secretFiles = new Map<string, Promise<string | undefined>>();
  private readonly images = new Map<string, Promise<SourceTree>>();
  private df: Dockerfile | undefined;
  private stages = new Map<number, Promise<StageState>>();
  private sources: ImageSources | undefined;
  private platform: Platform | undefined;
  /** Every layer step's key and result in this build: what `--cache-to` exports. */
  readonly usedSteps = new Map<string, CachedStep>();
  /** Caches from `--cache-from`, consulted after the local one. */
  remoteCaches: RemoteCache[] = [];

  constructor(
    private readonly options: BuildOptions,
    readonly file: string,
    readonly escape: '\\' | '`',
    readonly epoch: number,
    readonly proxyArgs: ReadonlySet<string>,
    readonly proxyEnv: ReadonlyMap<string, string>,
  ) {
    this.store = options.store;
    this.signal = options.signal;
  }

  /** Gives the session what COPY --from and RUN --mount from= resolve against. */
  bindStages(df: Dockerfile, stages: Map<number, Promise<StageState>>, sources: ImageSources, platform: Platform): void {
    this.df = df;
    this.stages = stages;
    this.sources = sources;
    this.platform = platform;
  }

  emit(event: BuildEvent): void {
    this.options.onEvent?.(event);
  }

  /** Registers a stage whose rootfs must be removed at the end. */
  track(state: StageState): void {
    this.states.push(state);
  }

  counts(): { total: number; cached: number } {
    return { total: this.stepIds, cached: this.cached };
  }

  async layerStep(
    state: StageState,
    key: string,
    text: string,
    produce: (rootfs: string, stepId: number) => Promise<ImageLayer | undefined>,
  ): Promise<ImageLayer | undefined> {
    const id = ++this.stepIds;
    state.fsKey = key;
    if (!this.options.noCache) {
      const hit = await this.lookup(key);
      if (hit) {
        this.cached++;
        this.usedSteps.set(key, hit);
        this.emit({ type: 'step', id, stage: state.name, text, cached: true });
        const layer = hit.layer;
        if (layer === undefined) return undefined;
        const image: ImageLayer = { descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, diffId: layer.diffId };
        await state.addLayer(this.store, image);
        return image;
      }
    }
    return this.runStep(state, id, text, async (rootfs) => ({ key, layer: await produce(rootfs, id) }));
  }

  unkeyedLayerStep(
    state: StageState,
    text: string,
    produce: (rootfs: string, stepId: number) => Promise<{ key: string; layer: ImageLayer | undefined }>,
  ): Promise<ImageLayer | undefined> {
    const id = ++this.stepIds;
    return this.runStep(state, id, text, (rootfs) => produce(rootfs, id));
  }

  async mayHit(): Promise<boolean> {
    if (this.options.noCache) return false;
    return this.remoteCaches.length > 0 || !(await this.store.cache.isEmpty());
  }

  /** Runs a step on the stage's rootfs, appends its layer to the stage and records it in the cache under its key. */
  private async runStep(
    state: StageState,
    id: number,
    text: string,
    produce: (rootfs: string) => Promise<{ key: string; layer: ImageLayer | undefined }>,
  ): Promise<ImageLayer | undefined> {
    this.emit({ type: 'step', id, stage: state.name, text, cached: false });
    const started = Date.now();
    const { key, layer } = await produce(await state.rootfs(this.store));
    state.fsKey = key;
    if (layer) await state.addLayer(this.store, layer);
    const result: CachedStep = layer ? { layer: { mediaType: layer.descriptor.mediaType, digest: layer.descriptor.digest, size: layer.descriptor.size, diffId: layer.diffId } } : {};
    await this.store.cache.put(key, result);
    this.usedSteps.set(key, result);
    this.emit({ type: 'step-done', id, seconds: (Date.now() - started) / 1000 });
    return layer;
  }

  /** A usable cached result of `key`: the local cache (its blob still present), else a `--cache-from` cache. */
  private async lookup(key: string): Promise<CachedStep | undefined> {
    const local = await this.store.cache.get(key);
    if (local && (local.layer === undefined || (await this.store.layout.blobs.stat(local.layer.digest))?.size === local.layer.size)) return local;
    for (const remote of this.remoteCaches) {
      const step = remote.get(key);
      if (!step) continue;
      await remote.fetchLayer(this.store, step);
      await this.store.cache.put(key, step);
      return step;
    }
    return undefined;
  }

  async secretFile(id: string): Promise<string | undefined> {
    let job = this.secretFiles.get(id);
    if (!job) {
      job = this.stageSecret(id);
      this.secretFiles.set(id, job);
    }
    return job;
  }

  /** A file secret is used in place; an env secret is written to a private dir on tmpfs (memory), never to disk. */
  private async stageSecret(id: string): Promise<string | undefined> {
    const spec = this.options.secrets?.get(id);
    if (!spec) return undefined;
    if (spec.file !== undefined) {
      const st = await stat(spec.file).catch(() => undefined);
      if (!st?.isFile()) throw new KilnError('USAGE', `--secret id=${id}: ${spec.file} is not a readable file`);
      return spec.file;
    }
    const value = (this.options.env ?? process.env)[spec.env ?? id];
    if (value === undefined) throw new KilnError('USAGE', `--secret id=${id}: environment variable ${spec.env ?? id} is not set`);
    this.secretsDir ??= await mkdtemp(join(await shmDir(), 'kiln-secrets-'));
    const file = join(this.secretsDir, id);
    await writeFile(file, value, { mode: 0o600 });
    return file;
  }

  async copySource(from: string | undefined, where: string): Promise<SourceTree> {
    if (from === undefined) {
      const source = { root: this.options.contextDir, ...(this.options.ignore ? { ignore: this.options.ignore } : {}), statCache: await this.statCache(this.options.contextDir), name: 'context' };
      return { open: async () => source };
    }
    const df = this.df!;
    const stage = stageRef(df, from, df.stages.length);
    if (stage) {
      const job = this.stages.get(stage.index);
      if (!job) throw new KilnError('INTERNAL', `${where}: stage ${from} was not scheduled`);
      const state = await job;
      return { key: `stage:${state.fsKey}`, open: async () => ({ root: await state.rootfs(this.store), name: `stage ${from}` }) };
    }
    const named = this.options.namedContexts?.get(from.toLowerCase());
    if (named !== undefined && !named.includes('://')) {
      const st = await stat(named).catch(() => undefined);
      if (!st?.isDirectory()) throw new KilnError('CONTEXT_INVALID', `--build-context ${from}=${named}: not a directory`);
      const source = { root: named, statCache: await this.statCache(named), name: `build context ${from}` };
      return { open: async () => source };
    }
    let job = this.images.get(from);
    if (!job) {
      job = this.imageTree(from, where);
      this.images.set(from, job);
    }
    return job;
  }

  private async imageTree(name: string, where: string): Promise<SourceTree> {
    let base;
    try {
      base = await resolveBaseImage(name, this.platform!, this.sources!);
    } catch (err) {
      throw new KilnError(err instanceof KilnError ? err.code : 'BUILD_FAILED', `${where}: --from=${name} is not a stage, a build context or a pullable image: ${errorMessage(err)}`, { cause: err });
    }
    const state = new StageState(name, base, this.platform!);
    this.track(state);
    return { key: `image:${base.digest ?? name}`, open: async () => ({ root: await state.rootfs(this.store), name: `image ${name}` }) };
  }

  async mountSource(from: string | undefined, source: string, writable: boolean, where: string): Promise<{ key: string; open(): Promise<string> }> {
    const tree = await this.copySource(from, where);
    const key = tree.key ?? (await digestCopyInputs({ source: await tree.open(), patterns: [source], dest: '/', workdir: '/', parents: false, excludes: [], link: false }));
    const open = async (): Promise<string> => {
      const root = (await tree.open()).root;
      // resolveInRoot gives the path relative to the root, symlinks resolved inside it.
      const path = join(root, await resolveInRoot(root, source));
      if (!writable) return path;
      // Writes to a read-write bind mount are thrown away (BuildKit): give the RUN its own copy.
      const copy = await this.store.scratch('bind');
      this.scratchDirs.add(copy);
      const dest = join(copy, 'src');
      await cp(path, dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      return dest;
    };
    return { key: `${key}:${source}`, open };
  }

  private statCache(root: string): Promise<StatCache> {
    let job = this.statCaches.get(root);
    if (!job) {
      job = StatCache.open({ dir: this.store.statCacheDir, root });
      this.statCaches.set(root, job);
    }
    return job;
  }

  async removeScratch(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  /** Saves stat caches and removes every rootfs, scratch dir and staged secret. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const job of this.statCaches.values()) await (await job).save().catch((e: unknown) => errors.push(e));
    for (const state of this.states) await state.dispose().catch((e: unknown) => errors.push(e));
    for (const dir of this.scratchDirs) await rm(dir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (this.secretsDir) await rm(this.secretsDir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (errors.length) throw new KilnError('INTERNAL', `cleanup after the build failed: ${errorMessage(errors[0])}`, { cause: errors[0] });
  }
}

/** /dev/shm when it is a usable tmpfs, else the temp dir (still removed at the end of the build). */
async function shmDir(): Promise<string> {
  const st = await stat('/dev/shm').catch(() => undefined);
  return st?.isDirectory() ? '/dev/shm' : tmpdir();
}
