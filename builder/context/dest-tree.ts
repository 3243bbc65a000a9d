import { lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { LayerEntry } from '../layer/entry.js';
import { KilnError } from '../../oci/errors.js';
import { resolveInRoot } from './resolve.js';

type Existing = 'directory' | 'other' | undefined;

/** Options of a `DestTree`. */
export interface DestTreeOptions {
  /** The stage's rootfs; undefined for --link, which copies onto an empty tree. */
  rootfs: string | undefined;
  /** Owner of directories the copy creates (--chown, else 0:0). */
  owner: { uid: number; gid: number };
  /** Mode of directories the copy creates: 0755, or an octal --chmod (as BuildKit's copier). */
  dirMode: number;
  now: number;
  instruction: string;
}

/**
 * The destination side of a copy: resolves paths through the rootfs's directories and symlinks (never out of
 * it), creates missing directories as entries, and collects the entries in order (a later one for the same path
 * replaces the earlier in place).
 */
export class DestTree {
  private readonly o: DestTreeOptions;
  private readonly planned = new Map<string, LayerEntry>();
  /** Directories this copy creates, which the rootfs therefore lacks. */
  private readonly created = new Set<string>();
  /** Entries that replace whatever is in the rootfs without a type check (extracted archives, like `tar -x`). */
  private readonly unchecked = new Set<string>();

  constructor(options: DestTreeOptions) {
    this.o = options;
  }

  private async resolve(rel: string): Promise<string> {
    if (this.o.rootfs === undefined) return posix.normalize(`/${rel}`).slice(1).replace(/\/+$/u, '');
    return resolveInRoot(this.o.rootfs, rel, true);
  }

  private async existing(resolved: string): Promise<Existing> {
    const p = this.planned.get(resolved);
    if (p) return p.type === 'directory' ? 'directory' : 'other';
    if (resolved === '') return 'directory';
    if (this.o.rootfs === undefined) return undefined;
    try {
      return (await lstat(join(this.o.rootfs, resolved))).isDirectory() ? 'directory' : 'other';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  /** True when `rel` (followed through symlinks) is a directory of the rootfs or of this copy. */
  async isDirectory(rel: string): Promise<boolean> {
    return (await this.existing(await this.resolve(rel))) === 'directory';
  }

  /** Makes `rel` and its missing parents directories; returns its resolved path. Fails when a non-directory is in the way. */
  async ensureDir(rel: string, mode = this.o.dirMode): Promise<string> {
    let cur = '';
    for (const part of rel.split('/')) {
      if (part === '' || part === '.') continue;
      const resolved = await this.resolve(cur === '' ? part : `${cur}/${part}`);
      const kind = await this.existing(resolved);
      if (kind === 'other') {
        throw new KilnError('BUILD_FAILED', `${this.o.instruction} failed: cannot create directory /${resolved}: a file is in the way`);
      }
      if (kind === undefined) {
        this.planned.set(resolved, { type: 'directory', path: resolved, mode, uid: this.o.owner.uid, gid: this.o.owner.gid, mtime: this.o.now });
        this.created.add(resolved);
      }
      cur = resolved;
    }
    return cur;
  }

  /** Where a file source lands: inside `destRel` as `name` when that is a directory, else at `destRel` itself. */
  async fileTarget(destRel: string, name: string): Promise<string> {
    const resolved = await this.resolve(destRel);
    if ((await this.existing(resolved)) === 'directory') return resolved === '' ? name : `${resolved}/${name}`;
    if (resolved === '') throw new KilnError('BUILD_FAILED', `${this.o.instruction} failed: cannot copy ${name} over the root directory`);
    return resolved;
  }

  /** The directory a directory's contents land in, created (with the source directory's mtime) when missing. */
  async treeTarget(destRel: string, sourceMtime: number): Promise<string> {
    const resolved = await this.resolve(destRel);
    const kind = await this.existing(resolved);
    if (kind === 'other') throw new KilnError('BUILD_FAILED', `${this.o.instruction} failed: cannot copy to non-directory: /${resolved}`);
    if (kind === undefined) {
      await this.ensureDir(posix.dirname(resolved) === '.' ? '' : posix.dirname(resolved));
      this.planned.set(resolved, { type: 'directory', path: resolved, mode: this.o.dirMode, uid: this.o.owner.uid, gid: this.o.owner.gid, mtime: sourceMtime });
      this.created.add(resolved);
    } else {
      // BuildKit gives a directory it created for the copy the source directory's timestamp.
      const mine = this.planned.get(resolved);
      if (mine?.type === 'directory' && this.created.has(resolved)) this.planned.set(resolved, { ...mine, mtime: sourceMtime });
    }
    return resolved;
  }

  /** Adds an entry; `checked` false skips the rootfs type check (archive members replace what is there). */
  add(entry: LayerEntry, checked = true): void {
    this.planned.set(entry.path, entry);
    if (!checked) this.unchecked.add(entry.path);
  }

  /** The entries, in the order their paths were first planned. */
  entries(): LayerEntry[] {
    return [...this.planned.values()];
  }

  /** Throws when `entry` would put a directory over a rootfs non-directory, or a non-directory over a directory. */
  async checkReplace(entry: LayerEntry): Promise<void> {
    if (this.o.rootfs === undefined || entry.type === 'whiteout' || entry.type === 'opaque') return;
    if (this.created.has(entry.path) || this.unchecked.has(entry.path)) return;
    let isDir: boolean;
    try {
      isDir = (await lstat(join(this.o.rootfs, entry.path))).isDirectory();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw err;
    }
    if (entry.type === 'directory' && !isDir) {
      throw new KilnError('BUILD_FAILED', `${this.o.instruction} failed: cannot copy to non-directory: /${entry.path}`, {
        hint: 'the destination has a file or symlink where the source has a directory',
      });
    }
    if (entry.type !== 'directory' && isDir) {
      throw new KilnError('BUILD_FAILED', `${this.o.instruction} failed: cannot replace directory /${entry.path} with a file`);
    }
  }
}
