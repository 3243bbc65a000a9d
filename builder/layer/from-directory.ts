import type { Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import type { EntryMeta, LayerEntry } from './entry.js';
import { compareLayerPaths } from './order.js';

/** Options of {@link entriesFromDirectory}. */
export interface EntriesFromDirectoryOptions {
  /** Path inside the layer under which the directory's contents go (e.g. "app/src"); default the root. */
  prefix?: string;
}

/**
 * Lists a directory tree (not the directory itself) as layer entries in layer order, reading metadata with lstat
 * (symlinks are entries, never followed). Files sharing an inode become hard links to the first of them in order.
 * Sockets are skipped, as by docker and containerd; devices and FIFOs are refused.
 */
export async function entriesFromDirectory(dir: string, options: EntriesFromDirectoryOptions = {}): Promise<LayerEntry[]> {
  const prefix = normalisePrefix(options.prefix ?? '');
  const out: LayerEntry[] = [];
  const firstByInode = new Map<string, string>();
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const { name, child, st, linkname } of await listDirectory(abs)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const meta = metaOf(path, st);
      if (st.isDirectory()) {
        out.push({ ...meta, type: 'directory' });
        await walk(child, path);
      } else if (linkname !== undefined) {
        out.push({ ...meta, type: 'symlink', linkname });
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? firstByInode.get(inode) : undefined;
        if (first !== undefined) out.push({ ...meta, type: 'hardlink', linkname: first });
        else {
          if (st.nlink > 1) firstByInode.set(inode, path);
          out.push({ ...meta, type: 'file', source: child, size: st.size });
        }
      } else if (!st.isSocket()) {
        throw new KilnError('VALIDATION', `${child} is a ${kindOf(st)}: layers hold only files, directories, symlinks and hard links; remove it`);
      }
    }
  };
  await walk(dir, prefix);
  return out;
}

/** One child of a directory: its name, absolute path, lstat and, for a symlink, its target. */
export interface ListedChild {
  name: string;
  child: string;
  st: Stats;
  linkname?: string;
}

// lstat calls under way at once: one at a time, a big tree waits on thread-pool round trips rather than the disk.
const LSTAT_BATCH = 64;

/** The children of `abs` in layer order (sorted per component, so a depth-first walk yields the layer order). */
export async function listDirectory(abs: string): Promise<ListedChild[]> {
  const names = (await readdir(abs)).sort(compareLayerPaths);
  const out: ListedChild[] = [];
  for (let i = 0; i < names.length; i += LSTAT_BATCH) {
    const batch = names.slice(i, i + LSTAT_BATCH).map(async (name): Promise<ListedChild> => {
      const child = join(abs, name);
      const st = await lstat(child);
      return st.isSymbolicLink() ? { name, child, st, linkname: await readlink(child) } : { name, child, st };
    });
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

/** Layer metadata of an lstat result; mtime in whole seconds (tar has no finer field without PAX). */
export function metaOf(path: string, st: Stats): EntryMeta {
  return { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.max(0, Math.floor(st.mtimeMs / 1000)) };
}

/** What kind of special file `st` is, for error messages. */
export function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'FIFO';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  if (st.isSocket()) return 'socket';
  return 'special file';
}

function normalisePrefix(prefix: string): string {
  const parts = prefix.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new KilnError('VALIDATION', `layer prefix "${prefix}" must not contain "..": give a path inside the image`);
  return parts.join('/');
}
