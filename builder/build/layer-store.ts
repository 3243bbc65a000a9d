import { mkdir, rm } from 'node:fs/promises';
import type { Descriptor } from '../../oci/descriptor.js';
import { errorMessage, isKilnError, KilnError } from '../../oci/errors.js';
import type { LayerEntry } from '../layer/entry.js';
import { checkLayerEntries, writeLayer, type LayerFile } from '../layer/writer.js';
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
    /** The rootfs the change was already applied to while the layer was written (storeLayer's `applyTo`). */
    appliedTo?: string;
  };
}

/** Options of storeLayer. */
export interface StoreLayerOptions {
  /** The sources belong to the step: a rootfs may take them by renaming (so never while writing). */
  move?: boolean;
  /**
   * Also apply the change to this rootfs, concurrently with writing the layer (the files are copied on a thread of
   * their own while the main thread tars). `name` names the stage in errors. Ignored with `move`.
   */
  applyTo?: { rootfs: string; name: string };
  /** Filled with the sha256 of each file source as the writer read it (writeLayer's `contentDigests`). */
  contentDigests?: Map<string, string>;
}

/** Writes `entries` as a reproducible layer straight into the store (renamed in, not copied) and returns it. */
export async function storeLayer(store: LocalStore, entries: LayerEntry[], epoch: number, options: StoreLayerOptions = {}): Promise<FreshLayer> {
  const applyTo = options.move ? undefined : options.applyTo;
  const dir = await ensureDir(store.blobTmpDir);
  const digests = options.contentDigests ? { contentDigests: options.contentDigests } : {};
  let file: LayerFile;
  if (applyTo === undefined) file = await writeLayer({ entries, epoch, dir, ...digests });
  else {
    // Entries the writer would refuse must not reach the rootfs either.
    checkLayerEntries(entries, epoch);
    const name = `being written for ${applyTo.name}`;
    const [written, applied] = await Promise.allSettled([
      writeLayer({ entries, epoch, dir, ...digests }),
      applyEntries({ rootfs: applyTo.rootfs, entries, epoch, name }),
    ]);
    if (written.status === 'rejected') throw written.reason;
    if (applied.status === 'rejected') {
      await rm(written.value.path, { force: true });
      throw unpackError(applied.reason, name);
    }
    file = written.value;
  }
  try {
    await store.layout.blobs.adopt(file.path, file.digest, file.size);
  } finally {
    await rm(file.path, { force: true });
  }
  const descriptor: Descriptor = { mediaType: file.mediaType, digest: file.digest, size: file.size };
  const change = { entries, epoch, move: options.move ?? false, ...(applyTo ? { appliedTo: applyTo.rootfs } : {}) };
  return { descriptor, diffId: file.diffId, change };
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
      if (isFreshLayer(layer)) {
        if (layer.change.appliedTo !== rootfs) await applyEntries({ rootfs, name, ...layer.change });
      } else await applyLayer({ rootfs, blob: store.layout.blobs.path(layer.descriptor.digest), name });
    } catch (err) {
      throw unpackError(err, name);
    }
  }
}

function unpackError(err: unknown, name: string): Error {
  if (isKilnError(err)) return err;
  return new KilnError('BUILD_FAILED', `cannot unpack layer ${name}: ${errorMessage(err)}`, { cause: err });
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}
