import { chmod, rm } from 'node:fs/promises';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../../oci/config.js';
import type { Platform } from '../../oci/descriptor.js';
import type { BaseImage, ImageLayer } from './base-image.js';
import { applyLayers, isFreshLayer, type FreshLayer } from './layer-store.js';
import { cacheKey, CACHE_VERSION } from './cache-key.js';
import type { LocalStore } from '../store/local-store.js';

/** PATH a Linux image gets when its base sets none (BuildKit's default). */
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The evolving state of one stage: its image config, layers and history so far, the variables in scope, the
 * chain key of its filesystem (what the cache keys of its layer steps derive from) and, only once a step
 * actually has to run, its root filesystem on disk.
 */
export class StageState {
  readonly name: string;
  readonly platform: Platform;
  readonly base: BaseImage;
  config: ContainerConfig;
  author: string | undefined;
  layers: ImageLayer[];
  history: HistoryEntry[];
  /** ARGs declared in this stage, with their values (undefined: declared without value). */
  args = new Map<string, string | undefined>();
  /** Chain key of the filesystem: changes only with steps that change files. */
  fsKey: string;
  private rootfsDir: string | undefined;
  private rootfsJob: Promise<string> | undefined;
  /** The rootfs directory from the moment it exists, even while (or after) unpacking fails. */
  private scratchDir: string | undefined;

  constructor(name: string, base: BaseImage, platform: Platform) {
    this.name = name;
    this.base = base;
    this.platform = platform;
    const inherited = base.config.config ?? {};
    this.config = structuredClone(inherited);
    if (!(this.config.Env ?? []).some((e) => e.startsWith('PATH='))) this.config.Env = [DEFAULT_PATH, ...(this.config.Env ?? [])];
    this.author = base.config.author;
    this.layers = [...base.layers];
    this.history = [...(base.config.history ?? [])];
    this.fsKey = cacheKey(CACHE_VERSION, ['base', base.digest ?? 'scratch', base.layers.map((l) => l.diffId)]);
  }

  /** The stage's environment (config Env) as a map, later entries winning. */
  envMap(): Map<string, string> {
    const out = new Map<string, string>();
    for (const e of this.config.Env ?? []) {
      const eq = e.indexOf('=');
      out.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
    }
    return out;
  }

  /** Sets one variable in the config Env, keeping its position when it exists. */
  setEnv(key: string, value: string): void {
    const env = this.config.Env ?? [];
    const at = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
    if (at >= 0) env[at] = `${key}=${value}`;
    else env.push(`${key}=${value}`);
    this.config.Env = env;
  }

  /** Variables for expanding the stage's words: ARGs in scope, then ENV (which wins, as in BuildKit). */
  expansionEnv(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of this.args) if (v !== undefined) out.set(k, v);
    for (const [k, v] of this.envMap()) out.set(k, v);
    return out;
  }

  /**
   * Appends a layer produced by a step; keeps an already materialised rootfs in step with it, from the entries of a
   * fresh layer (which must still exist: call this before the step removes its scratch) rather than its blob.
   */
  async addLayer(store: LocalStore, layer: ImageLayer | FreshLayer): Promise<void> {
    // Only the plain layer is kept: the entries' sources go away with the step.
    this.layers.push({ descriptor: layer.descriptor, diffId: layer.diffId });
    if (this.rootfsDir !== undefined) await applyLayers(store, [layer], this.rootfsDir, this.name);
  }

  /** The stage's root filesystem, unpacked from its layers the first time a step needs it. */
  rootfs(store: LocalStore): Promise<string> {
    if (this.rootfsDir !== undefined) return Promise.resolve(this.rootfsDir);
    this.rootfsJob ??= (async () => {
      const dir = await store.scratch('rootfs');
      // Known before the layers are applied, so a refused layer still leaves dispose() a dir to remove.
      this.scratchDir = dir;
      // A temp dir is 0700, and the rootfs root is every RUN's '/': a layer without a './' entry must leave it 0755.
      try {
        await chmod(dir, 0o755);
        await this.unpackInto(store, dir);
      } catch (err) {
        // A layer that fails to unpack (hostile, corrupt) must not leave its partial tree in the store's tmp.
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      this.rootfsDir = dir;
      return dir;
    })();
    return this.rootfsJob;
  }

  /**
   * Applies the stage's layers to `dir`: the base image's from the store's unpacked cache (a hard-linked clone, the
   * base unpacked there first if needed), then the stage's own. A base made of a stage's fresh layers is not cached.
   */
  private async unpackInto(store: LocalStore, dir: string): Promise<void> {
    // The stage's layers start with its base's (steps only append).
    const base = this.base.layers;
    const cacheable = base.length > 0 && !base.some(isFreshLayer);
    const cloned =
      cacheable &&
      (await store.unpacked.cloneInto(
        base.map((l) => l.diffId),
        dir,
        async (tree) => {
          await chmod(tree, 0o755);
          await applyLayers(store, base, tree, `stage ${this.name}`);
        },
      ));
    await applyLayers(store, cloned ? this.layers.slice(base.length) : this.layers, dir, `stage ${this.name}`);
  }

  /** Whether the rootfs is on disk. */
  get materialised(): boolean {
    return this.rootfsDir !== undefined;
  }

  /** The final image config of the stage. */
  imageConfig(created: string): ImageConfig {
    const { architecture, os, variant } = this.platform;
    return {
      created,
      ...(this.author !== undefined ? { author: this.author } : {}),
      architecture,
      os,
      ...(variant ? { variant } : {}),
      config: this.config,
      rootfs: { type: 'layers', diff_ids: this.layers.map((l) => l.diffId) },
      history: this.history,
    };
  }

  /** Removes the rootfs from disk. */
  async dispose(): Promise<void> {
    await this.rootfsJob?.catch(() => undefined);
    const dir = this.rootfsDir ?? this.scratchDir;
    if (dir) await rm(dir, { recursive: true, force: true });
    this.rootfsDir = undefined;
    this.scratchDir = undefined;
    this.rootfsJob = undefined;
  }
}
