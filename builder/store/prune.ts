import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../../oci/digest.js';
import type { RawManifest } from '../../oci/manifest.js';
import type { LocalStore } from './local-store.js';

/** What `prune` removed. */
export interface PruneResult {
  cacheEntries: number;
  blobs: number;
  bytes: number;
}

/**
 * Clears the build cache (index, unpacked base images, RUN cache mounts, stat caches, scratch space) and deletes
 * every blob no named image reaches. Images keep working; the next build starts cold.
 */
export async function prune(store: LocalStore): Promise<PruneResult> {
  const cacheEntries = (await store.cache.clear()) + (await store.unpacked.clear());
  for (const dir of ['cache-mounts', 'statcache']) await rm(join(store.root, dir), { recursive: true, force: true });
  await store.clearScratch();
  // Base images the builder fetched are cache too: named `<ref>+<platform>` (see build/base-image.ts).
  for (const image of await store.images()) if (image.name.includes('+')) await store.layout.untag(image.name);
  const live = await reachableBlobs(store);
  let blobs = 0;
  let bytes = 0;
  for await (const digest of store.layout.blobs.list()) {
    if (live.has(digest)) continue;
    const info = await store.layout.blobs.stat(digest);
    if (await store.layout.blobs.delete(digest)) {
      blobs++;
      bytes += info?.size ?? 0;
    }
  }
  return { cacheEntries, blobs, bytes };
}

/** Every blob (manifests included) reachable from index.json. */
export async function reachableBlobs(store: LocalStore): Promise<Set<Digest>> {
  const live = new Set<Digest>();
  const visit = async (raw: RawManifest): Promise<void> => {
    if (live.has(raw.digest)) return;
    live.add(raw.digest);
    if (raw.kind === 'index') {
      for (const child of raw.parsed.manifests) {
        const present = await store.layout.blobs.stat(child.digest);
        if (present) await visit(await store.layout.getManifest(child.digest, child.mediaType));
      }
      return;
    }
    live.add(raw.parsed.config.digest);
    for (const layer of raw.parsed.layers) live.add(layer.digest);
  };
  for (const desc of (await store.layout.readIndex()).manifests) {
    await visit(await store.layout.getManifest(desc.digest, desc.mediaType));
  }
  return live;
}
