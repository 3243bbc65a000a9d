import { Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestOf, isDigest } from '../../oci/digest.js';
import { KilnError, errorMessage, isKilnError } from '../../oci/errors.js';
import { parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { readStreamLimited } from '../../oci/stream-util.js';
import type { Target } from '../../oci/target.js';
import type { CachedStep } from './build-cache.js';
import type { LocalStore } from './local-store.js';

/** The cache artifact's config: the index of cache keys; its layers are the layer blobs the index names. */
export const CACHE_CONFIG_MEDIA_TYPE = 'application/vnd.kiln.build-cache.v1+json';
/** artifactType of the cache manifest, so registries and `kiln inspect` can tell it from an image. */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.kiln.build-cache.v1';
const MAX_INDEX_BYTES = 16 * 1024 * 1024;

interface CacheIndex {
  version: 1;
  steps: Record<string, CachedStep>;
}

/**
 * Writes the steps a build used (`--cache-to`) to `target` as one OCI artifact: config = the key index, layers =
 * the layer blobs. Blobs already at the target are skipped, so exporting after a cached build is cheap.
 */
export async function exportCache(store: LocalStore, steps: ReadonlyMap<string, CachedStep>, target: Target, tag?: string): Promise<Descriptor> {
  const index: CacheIndex = { version: 1, steps: Object.fromEntries([...steps].sort(([a], [b]) => (a < b ? -1 : 1))) };
  const indexBytes = Buffer.from(JSON.stringify(index));
  const config: Descriptor = { mediaType: CACHE_CONFIG_MEDIA_TYPE, digest: digestOf(indexBytes), size: indexBytes.length };
  const layers = new Map<string, Descriptor>();
  for (const step of steps.values()) {
    if (step.layer) layers.set(step.layer.digest, { mediaType: step.layer.mediaType, digest: step.layer.digest, size: step.layer.size });
  }
  for (const desc of layers.values()) {
    if ((await target.statBlob(desc.digest)) === desc.size) continue;
    await target.putBlob(desc, async () => store.layout.blobs.get(desc.digest));
  }
  await target.putBlob(config, Readable.from([indexBytes]));
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: CACHE_ARTIFACT_TYPE,
    config,
    layers: [...layers.values()],
  };
  const raw = parseManifest(Buffer.from(JSON.stringify(manifest)), MediaType.OciManifest, 'build cache manifest');
  await target.putManifest(raw, tag ?? target.ref.tag);
  return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
}

/** A cache imported with `--cache-from`: keys answered from its index, layer blobs fetched only on a hit. */
export class RemoteCache {
  private constructor(
    readonly target: Target,
    private readonly steps: Map<string, CachedStep>,
  ) {}

  /** Reads the cache artifact at `target`; a missing one is an empty cache (a first CI run has none yet). */
  static async open(target: Target): Promise<RemoteCache> {
    let raw;
    try {
      raw = await target.resolve();
    } catch (err) {
      if (isKilnError(err, 'MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NOT_FOUND', 'LAYOUT_INVALID')) return new RemoteCache(target, new Map());
      throw err;
    }
    if (raw.kind !== 'manifest' || raw.parsed.config.mediaType !== CACHE_CONFIG_MEDIA_TYPE) {
      throw new KilnError('VALIDATION', `--cache-from ${target.description} is not a kiln build cache (config media type ${raw.kind === 'manifest' ? raw.parsed.config.mediaType : raw.mediaType})`, {
        hint: 'point --cache-from at what an earlier --cache-to wrote',
      });
    }
    const desc = raw.parsed.config;
    if (desc.size > MAX_INDEX_BYTES) throw new KilnError('TOO_LARGE', `build cache index in ${target.description} is ${desc.size} bytes, over 16 MiB`);
    const bytes = await readStreamLimited(await target.getBlob(desc), MAX_INDEX_BYTES, `build cache index in ${target.description}`);
    return new RemoteCache(target, parseIndex(bytes, target.description));
  }

  get size(): number {
    return this.steps.size;
  }

  /** The step recorded under `key`, if any. */
  get(key: string): CachedStep | undefined {
    return this.steps.get(key);
  }

  /** Copies a hit's layer blob into the local store (verified on the way in). */
  async fetchLayer(store: LocalStore, step: CachedStep): Promise<void> {
    const layer = step.layer;
    if (!layer || (await store.layout.blobs.stat(layer.digest))?.size === layer.size) return;
    const desc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    try {
      await store.layout.blobs.put(await this.target.getBlob(desc, { verify: false }), { expectedDigest: desc.digest, expectedSize: desc.size, subject: `cached layer ${desc.digest}` });
    } catch (err) {
      throw new KilnError(isKilnError(err) ? err.code : 'NETWORK', `--cache-from ${this.target.description}: cannot fetch layer ${desc.digest}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

function parseIndex(bytes: Buffer, where: string): Map<string, CachedStep> {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('VALIDATION', `build cache index in ${where} is not JSON: ${errorMessage(err)}`);
  }
  const steps = (doc as Partial<CacheIndex>).steps;
  if ((doc as Partial<CacheIndex>).version !== 1 || typeof steps !== 'object' || steps === null) {
    throw new KilnError('VALIDATION', `build cache index in ${where} has an unknown format (expected version 1)`);
  }
  const out = new Map<string, CachedStep>();
  for (const [key, step] of Object.entries(steps)) {
    if (!/^[a-f0-9]{64}$/.test(key)) continue;
    const layer = (step as CachedStep).layer;
    if (layer === undefined) out.set(key, {});
    else if (isDigest(layer.digest) && isDigest(layer.diffId) && Number.isSafeInteger(layer.size) && typeof layer.mediaType === 'string') out.set(key, { layer });
  }
  return out;
}
