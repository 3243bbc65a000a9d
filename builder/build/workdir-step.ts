import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerEntry } from '../layer/entry.js';
import { resolveUser } from '../executor/user.js';
import { resolveInRoot } from '../context/resolve.js';
import { cacheKey } from './cache-key.js';
import { storeLayer } from './layer-store.js';
import type { StageState } from './stage-state.js';
import type { StepContext } from './step-context.js';

/**
 * WORKDIR creates its directory (and missing parents, owned by the current USER as BuildKit does) when the
 * rootfs lacks it; returns whether a layer was made.
 */
export async function workdirStep(ctx: StepContext, state: StageState, path: string): Promise<boolean> {
  const user = state.config.User || '0';
  const key = cacheKey(state.fsKey, ['WORKDIR', path, user]);
  const layer = await ctx.layerStep(state, key, `WORKDIR ${path}`, async (rootfs) => {
    const parts = path.split('/').filter(Boolean);
    const missing = new Set<string>();
    for (let i = 1; i <= parts.length; i++) {
      // Relative to the rootfs with symlinks followed inside it: WORKDIR through a symlink makes the link's target.
      const rel = await resolveInRoot(rootfs, parts.slice(0, i).join('/'));
      const st = await lstat(join(rootfs, rel)).catch(() => undefined);
      if (!st && rel !== '') missing.add(rel);
    }
    if (missing.size === 0) return undefined;
    const owner = await resolveUser(rootfs, user);
    const entries: LayerEntry[] = [...missing].map((p) => ({ type: 'directory', path: p, mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: ctx.epoch }));
    return storeLayer(ctx.store, entries, ctx.epoch);
  });
  return layer !== undefined;
}
