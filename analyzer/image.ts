import { MAX_CONFIG_BYTES, parseImageConfig, type HistoryEntry, type ImageConfig } from '../oci/config.js';
import { createLimiter } from '../oci/concurrency.js';
import type { Descriptor, Platform } from '../oci/descriptor.js';
import type { Digest } from '../oci/digest.js';
import { KilnError } from '../oci/errors.js';
import type { RawManifest } from '../oci/manifest.js';
import { formatPlatform, hostPlatform, selectManifestForPlatform } from '../oci/platform.js';
import { readStreamLimited } from '../oci/stream-util.js';
import type { Target } from '../oci/target.js';
import { readLayer, type LayerContents } from './layer-reader.js';

/** Largest config blob read into memory. */

/** The history entry dive pairs with a layer: the k-th entry without `empty_layer`, else `(missing)`. */
export interface LayerHistory {
  /** `created_by` as recorded. */
  createdBy: string;
  /** `created_by` without a leading `/bin/sh -c `, as dive shows it. */
  command: string;
  /** False when the config has fewer non-empty history entries than layers (dive prints `(missing)`). */
  present: boolean;
}

/** One layer read from the image. */
export interface LoadedLayer {
  index: number;
  descriptor: Descriptor;
  diffId: Digest;
  history: LayerHistory;
  contents: LayerContents;
}

/** An image manifest, its config and every layer read once. */
export interface LoadedImage {
  name: string;
  digest: Digest;
  platform: string;
  config: ImageConfig;
  layers: LoadedLayer[];
}

/** Progress of `loadImage`: one event per layer read. */
export interface LayerProgress {
  index: number;
  total: number;
  digest: Digest;
  compressedSize: number;
}

/** Options of `loadImage`. */
export interface LoadImageOptions {
  target: Target;
  /** Which manifest of an index (default: this machine's platform). */
  platform?: Platform | undefined;
  /** Layers read at once (default 4): decompression runs on libuv's threads, so layers overlap. */
  concurrency?: number;
  onProgress?: (event: LayerProgress) => void;
}

/** dive strips this prefix from `created_by` (dive/image/docker/layer.go). */
const SHELL_PREFIX = '/bin/sh -c ';

/** Resolves the target to one image manifest, reads its config, then streams every layer once into dive's trees. */
export async function loadImage(options: LoadImageOptions): Promise<LoadedImage> {
  const { target } = options;
  const manifest = await resolveImageManifest(target, options.platform);
  const { config: configDesc, layers } = manifest.parsed;
  if (configDesc.size > MAX_CONFIG_BYTES) {
    throw new KilnError('TOO_LARGE', `config ${configDesc.digest} of ${target.description} is ${configDesc.size} bytes, over 4 MiB`);
  }
  const configBytes = await readStreamLimited(await target.getBlob(configDesc), MAX_CONFIG_BYTES, `config ${configDesc.digest}`);
  const config = parseImageConfig(configBytes, `config ${configDesc.digest}`);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new KilnError('VALIDATION', `config ${configDesc.digest} of ${target.description} lists ${diffIds.length} diff_ids but the manifest has ${layers.length} layers`, {
      hint: 'the image config and manifest disagree: rebuild or re-push the image',
    });
  }
  const histories = layerHistories(config.history ?? [], layers.length);
  const limit = createLimiter(Math.max(1, options.concurrency ?? 4));
  // After a failure no further layer starts; those under way finish, and the first failing layer in image
  // order is reported, so the same bad image always gives the same error whatever finished first.
  let failed = false;
  const settled = await Promise.allSettled(
    layers.map((descriptor, index) =>
      limit(async (): Promise<LoadedLayer | undefined> => {
        if (failed) return undefined;
        const diffId = diffIds[index] as Digest;
        const subject = `layer ${index + 1}/${layers.length} ${descriptor.digest}`;
        const contents = await readLayer({ blob: await target.getBlob(descriptor), compression: descriptor.mediaType, diffId, subject });
        options.onProgress?.({ index, total: layers.length, digest: descriptor.digest, compressedSize: descriptor.size });
        return { index, descriptor, diffId, history: histories[index] as LayerHistory, contents };
      }).catch((err: unknown) => {
        failed = true;
        throw err;
      }),
    ),
  );
  const firstFailure = settled.find((r) => r.status === 'rejected');
  if (firstFailure) throw firstFailure.reason;
  const loaded = settled.map((r) => (r as PromiseFulfilledResult<LoadedLayer | undefined>).value as LoadedLayer);
  const platform = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
  return { name: target.description, digest: manifest.digest, platform, config, layers: loaded };
}

/** The image manifest the target names, choosing `platform` (default: this machine's) from an index. */
async function resolveImageManifest(target: Target, platform: Platform | undefined): Promise<Extract<RawManifest, { kind: 'manifest' }>> {
  let manifest = await target.resolve();
  if (manifest.kind === 'index') {
    const chosen = selectManifestForPlatform(manifest.parsed, platform ?? hostPlatform());
    manifest = await target.getManifest(chosen.digest, chosen.mediaType);
  }
  if (manifest.kind !== 'manifest') {
    throw new KilnError('VALIDATION', `${target.description}: the index entry is itself an index; name one image`, { hint: 'use --platform or a digest' });
  }
  return manifest;
}

/** Pairs layers with non-empty history entries in order, as dive's ToImage does; the rest are `(missing)`. */
export function layerHistories(history: HistoryEntry[], count: number): LayerHistory[] {
  const withLayers = history.filter((h) => h.empty_layer !== true);
  return Array.from({ length: count }, (_, i) => {
    const entry = withLayers[i];
    if (!entry) return { createdBy: '(missing)', command: '(missing)', present: false };
    const createdBy = entry.created_by ?? '';
    const command = createdBy.startsWith(SHELL_PREFIX) ? createdBy.slice(SHELL_PREFIX.length) : createdBy;
    return { createdBy, command, present: true };
  });
}
