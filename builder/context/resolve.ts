import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';

const MAX_LINK_HOPS = 255;

/** Splits a '/'-separated path into components, dropping '', '.' and applying '..' (clamped at the root). */
function components(path: string): string[] {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out;
}

/**
 * Resolves `rel` inside `root` as if `root` were '/' (containerd's fs.RootPath): symlinks are followed, absolute
 * targets restart at the root and '..' never leaves it. Returns the resolved relative path ('' for the root);
 * `followFinal` false leaves a final symlink unresolved. Missing components are kept as written.
 */
export async function resolveInRoot(root: string, rel: string, followFinal = true): Promise<string> {
  let pending = components(rel);
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const name = pending.shift() as string;
    if (name === '..') {
      done.pop();
      continue;
    }
    const candidate = [...done, name];
    if (pending.length === 0 && !followFinal) {
      done.push(name);
      break;
    }
    let isLink = false;
    try {
      isLink = (await lstat(join(root, ...candidate))).isSymbolicLink();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      // Nothing further exists: the rest is kept literally.
      done.push(name);
      for (const p of pending) {
        if (p === '..') done.pop();
        else done.push(p);
      }
      return done.join('/');
    }
    if (!isLink) {
      done.push(name);
      continue;
    }
    if (++hops > MAX_LINK_HOPS) throw new KilnError('UNSAFE_PATH', `too many levels of symbolic links resolving ${rel}`);
    const target = await readlink(join(root, ...candidate));
    const rest = pending;
    pending = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...rest];
    if (target.startsWith('/')) done.length = 0;
  }
  return done.join('/');
}

/** Result of making a Dockerfile source argument relative to its source root. */
export interface SourcePath {
  /** Canonical '/'-separated path relative to the root ('' = the root itself). */
  rel: string;
  /** The last component as written (names the copy when it lands in a directory). */
  base: string;
}

/**
 * Canonicalises a local source argument: a leading '/' is relative to the source root, a trailing '/' is
 * ignored; '..' that climbs above the root is refused (CONTEXT_INVALID) instead of silently clamped.
 */
export function sourcePath(arg: string, sourceName: string, instruction: string): SourcePath {
  const parts: string[] = [];
  for (const part of arg.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new KilnError('CONTEXT_INVALID', `${instruction} failed: forbidden path outside the ${sourceName}: "${arg}"`, {
          hint: 'sources are relative to the root of the build context; move the file into the context or use a larger context directory',
        });
      }
      parts.pop();
    } else parts.push(part);
  }
  const rel = parts.join('/');
  return { rel, base: parts[parts.length - 1] ?? '' };
}
