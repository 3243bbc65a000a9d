import { lstat, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';

/** Where a container path lands inside a root directory once its symlinks are followed without leaving the root. */
export interface RootPath {
  /** '/'-separated path relative to the root, '' for the root itself; no '.', '..' or symlink in its existing part. */
  rel: string;
  /** Stats of the final entry, or undefined when it (or a parent) does not exist yet. */
  stats: Stats | undefined;
  /** How many leading components of `rel` exist in the root (all of them when `stats` is set). */
  existing: number;
}

/** Linux gives up after 40 links (ELOOP); so do we. */
const MAX_LINKS = 40;

/**
 * Resolves `path` (absolute, in the container) inside `root` the way the kernel would after chroot: symlinks are
 * followed, absolute targets and '..' are clamped at the root, so the result never names a host path outside it.
 */
export async function resolveInRoot(root: string, path: string): Promise<RootPath> {
  const pending = splitPath(path);
  const done: string[] = [];
  let links = 0;
  // Leading components of `done` that exist; once one is missing, everything below is literal.
  let existing = 0;
  let stats: Stats | undefined = await lstat(root);
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      done.pop();
      existing = Math.min(existing, done.length);
      stats = existing === done.length ? await lstat(join(root, ...done)) : undefined;
      continue;
    }
    if (stats !== undefined && !stats.isDirectory()) {
      throw new KilnError('VALIDATION', `${path}: /${done.join('/')} is not a directory in the rootfs`, {
        hint: 'choose a path whose parents are directories',
      });
    }
    const next = existing === done.length ? await lstatOrUndefined(join(root, ...done, part)) : undefined;
    if (next?.isSymbolicLink()) {
      if (++links > MAX_LINKS) {
        throw new KilnError('VALIDATION', `${path}: too many levels of symbolic links in the rootfs`, {
          hint: 'fix the symlink loop in the image',
        });
      }
      const target = await readlink(join(root, ...done, part));
      if (target.startsWith('/')) done.length = 0;
      pending.unshift(...splitPath(target));
      existing = done.length;
      stats = await lstat(join(root, ...done));
      continue;
    }
    done.push(part);
    if (next !== undefined) existing = done.length;
    stats = next;
  }
  return { rel: done.join('/'), stats, existing };
}

function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.');
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
