import { mkdir, rm } from 'node:fs/promises';
import type { Descriptor } from '../../oci/descriptor.js';
import { errorMessage, isKilnError, KilnError } from '../../oci/errors.js';
import type { LayerEntry } from '../layer/entry.js';
import { writeLayer } from '../layer/writer.js';
import { applyEntries } from '../rootfs/apply-entries.js';
import { applyLayer } from '../rootfs/apply-layer.js';
import type { LocalStore } from '../store/local-store.js';
import type { ImageLayer } from './base-image.js';

/**
 * A layer a step has just stored, with the entries it was written from: a rootfs takes the change faster from
 * them than by unpacking the blob. Only valid while the entries' sources exist; StageState keeps the plain layer.
 */
export interface FreshLayer extends ImageLayer {
  change: {
    entries: readonly LayerEntry[];
    epoch: number;
    /** The sources belong to the step and nothing reads them after it: they may be renamed into the rootfs. */
    move: boolean;
  };
}

/** Writes `entries` as a reproducible layer straight into the store (renamed in, not copied) and returns it. */
export async function storeLayer(store: LocalStore, entries: LayerEntry[], epoch: number, options: { move?: boolean } = {}): Promise<FreshLayer> {
  const file = await writeLayer({ entries, epoch, dir: await ensureDir(store.blobTmpDir) });
  try {
    await store.layout.blobs.adopt(file.path, file.digest, file.size);
  } finally {
    await rm(file.path, { force: true });
  }
  const descriptor: Descriptor = { mediaType: file.mediaType, digest: file.digest, size: file.size };
  return { descriptor, diffId: file.diffId, change: { entries, epoch, move: options.move ?? false } };
}

/** Whether `layer` was just stored by a step and still carries its entries. */
export function isFreshLayer(layer: ImageLayer): layer is FreshLayer {
  return 'change' in layer;
}

/** Unpacks `layers` in order into `rootfs` (an empty or partly built directory), safely; fresh ones from their entries. */
export async function applyLayers(store: LocalStore, layers: readonly ImageLayer[], rootfs: string, imageName: string): Promise<void> {
  for (const layer of layers) {
    const name = `${layer.descriptor.digest} of ${imageName}`;
    try {
      if (isFreshLayer(layer)) await applyEntries({ rootfs, name, ...layer.change });
      else await applyLayer({ rootfs, blob: store.layout.blobs.path(layer.descriptor.digest), name });
    } catch (err) {
      if (isKilnError(err)) throw err;
      throw new KilnError('BUILD_FAILED', `cannot unpack layer ${layer.descriptor.digest} of ${imageName}: ${errorMessage(err)}`, { cause: err });
    }
  }
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}
