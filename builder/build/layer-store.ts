import { mkdir, rm } from 'node:fs/promises';
import type { Descriptor } from '../../oci/descriptor.js';
import { errorMessage, isKilnError, KilnError } from '../../oci/errors.js';
import type { LayerEntry } from '../layer/entry.js';
import { writeLayer } from '../layer/writer.js';
import { applyLayer } from '../rootfs/apply-layer.js';
import type { LocalStore } from '../store/local-store.js';
import type { ImageLayer } from './base-image.js';

/** Writes `entries` as a reproducible layer straight into the store (renamed in, not copied) and returns it. */
export async function storeLayer(store: LocalStore, entries: LayerEntry[], epoch: number): Promise<ImageLayer> {
  const file = await writeLayer({ entries, epoch, dir: await ensureDir(store.blobTmpDir) });
  try {
    await store.layout.blobs.adopt(file.path, file.digest, file.size);
  } finally {
    await rm(file.path, { force: true });
  }
  const descriptor: Descriptor = { mediaType: file.mediaType, digest: file.digest, size: file.size };
  return { descriptor, diffId: file.diffId };
}

/** Unpacks `layers` in order into `rootfs` (an empty or partly built directory), safely. */
export async function applyLayers(store: LocalStore, layers: readonly ImageLayer[], rootfs: string, imageName: string): Promise<void> {
  for (const layer of layers) {
    const blob = store.layout.blobs.path(layer.descriptor.digest);
    try {
      await applyLayer({ rootfs, blob, name: `${layer.descriptor.digest} of ${imageName}` });
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
