import { execFile } from 'node:child_process';
import { chmodSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, readdirSync, realpathSync, rmSync, symlinkSync, unlinkSync, utimesSync, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../layer/order.js';
import type { FileCopier } from './file-copier.js';
import { RootResolver } from './resolve.js';
import { isLayerXattr, writeXattrs, type Xattrs } from './xattrs.js';

const execFileAsync = promisify(execFile);

/** Owner, permission bits (07777), mtime in whole seconds and xattrs of a member, as a layer's tar header holds them. */
export interface MemberMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: Xattrs;
}

/** What a member makes at its path; a file's `write` creates it at a path that was just cleared. */
export type MemberNode =
  | { kind: 'directory' }
  | { kind: 'symlink'; linkname: string }
  | { kind: 'hardlink'; linkname: string }
  | { kind: 'fifo' }
  | { kind: 'file'; write: (target: string) => Promise<void> | void }
  /** A file copied from `source` by the applier's FileCopier, in the background (see `copier`). */
  | { kind: 'copy'; source: string; size: number };

/**
 * Writes layer members onto a rootfs as docker does: whiteouts delete, opaque markers hide what lower layers had in
 * a directory (whatever their position in the layer), a member replaces whatever was at its path. Every path is
 * resolved inside the root (symlinks followed within it) and anything that would land outside it is refused
 * (UNSAFE_PATH) before it is written. Shared by applyLayer (members from a tar) and applyEntries (from a step's
 * entries), so both make the same tree with the same checks. File-system calls are synchronous on purpose: a layer
 * is tens of thousands of tiny syscalls and each async one is a thread-pool round trip (several times slower).
 */
export class TreeApplier {
  private readonly resolver: RootResolver;
  private readonly asRoot = process.getuid?.() === 0;
  /** Real paths this layer wrote, and every directory above one of them: what an opaque marker must keep. */
  private readonly added = new Set<string>();
  private readonly aboveAdded = new Set<string>();
  private readonly opaque = new Set<string>();
  /** Directory metadata is set last: writing their children would change their mtimes again. */
  private readonly dirs: Array<{ path: string; meta: MemberMeta }> = [];
  private readonly xattrs = new Map<string, Xattrs>();

  constructor(
    private readonly root: string,
    /** Prefix of error messages, e.g. `layer sha256:…`. */
    readonly subject: string,
    /**
     * Takes `copy` members: they are queued, and drained before anything is removed from the tree (a queued
     * target's parent could go, or become a symlink), before a hard link (its source may be queued) and at the end.
     */
    private readonly copier?: FileCopier,
  ) {
    this.resolver = new RootResolver(root, subject);
  }

  /** Applies the member named `name` as a tar would name it ("./" prefixes, `.wh.` whiteouts, opaque markers). */
  async apply(name: string, node: MemberNode, meta: MemberMeta): Promise<void> {
    const parts = this.memberPath(name, name);
    try {
      await this.applyAt(name, parts, node, meta);
    } catch (err) {
      if (err instanceof KilnError) throw err;
      throw new KilnError('BUILD_FAILED', `${this.subject}: entry "${name}" could not be extracted: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** Hides lower content under opaque directories, then sets directory metadata and xattrs. */
  async finish(): Promise<void> {
    await this.copier?.drain();
    for (const dir of this.opaque) if (this.reachedDirectly(dir)) this.prune(dir);
    for (const { path, meta } of this.dirs.reverse()) {
      if (this.reachedDirectly(path) && lstatIfExists(path)?.isDirectory()) this.setMeta(path, meta, false);
    }
    for (const path of this.xattrs.keys()) {
      const st = this.reachedDirectly(path) ? lstatIfExists(path) : undefined;
      // A symlink put there later by the same layer would carry the xattrs anywhere it points.
      if (!st || st.isSymbolicLink()) this.xattrs.delete(path);
    }
    await writeXattrs(this.xattrs);
  }

  /** An UNSAFE_PATH error naming the member. */
  unsafe(entry: string, why: string): KilnError {
    return new KilnError('UNSAFE_PATH', `${this.subject}: entry "${entry}" ${why}`);
  }

  private async applyAt(name: string, parts: string[], node: MemberNode, meta: MemberMeta): Promise<void> {
    // The root itself ("./"): its metadata belongs to whoever made the rootfs.
    if (parts.length === 0) return;
    const base = parts[parts.length - 1] as string;
    const parentParts = parts.slice(0, -1);
    if (base === OPAQUE_MARKER) {
      this.opaque.add(this.resolver.dir(parentParts, name, true) as string);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.copier?.drain();
      return this.whiteout(name, parentParts, base.slice(WHITEOUT_PREFIX.length));
    }
    const parent = this.resolver.dir(parentParts, name, true) as string;
    const target = join(parent, base);
    // Two names can reach one path through symlinks: a copy queued there must land before this entry replaces it.
    if (this.copier && this.added.has(target)) await this.copier.drain();
    const existing = lstatIfExists(target);
    // Removing what is there could take a queued copy's parent with it: the copies so far land first.
    if (existing && this.copier && !(node.kind === 'directory' && existing.isDirectory())) await this.copier.drain();
    if (node.kind === 'directory') {
      if (!existing?.isDirectory()) {
        this.clear(target, existing);
        mkdirSync(target, 0o700);
      }
      this.dirs.push({ path: target, meta });
    } else if (node.kind === 'hardlink') {
      await this.copier?.drain();
      const source = this.linkSource(name, node.linkname);
      if (source === target) return;
      this.clear(target, existing);
      linkSync(source, target);
    } else if (node.kind === 'copy') {
      if (!this.copier) throw new KilnError('INTERNAL', `${this.subject}: entry "${name}" is a copy but the applier has no copier`);
      this.clear(target, existing);
      this.copier.copy({ source: node.source, target, size: node.size, name, mode: meta.mode & 0o7777, uid: meta.uid, gid: meta.gid, mtime: meta.mtime });
    } else {
      this.clear(target, existing);
      if (node.kind === 'symlink') {
        if (node.linkname === '') throw new KilnError('VALIDATION', `${this.subject}: symlink "${name}" has an empty target`);
        symlinkSync(node.linkname, target);
      } else if (node.kind === 'fifo') {
        // node cannot make FIFOs.
        await execFileAsync('mkfifo', ['-m', '600', '--', target]);
      } else {
        await node.write(target);
      }
      this.setMeta(target, meta, node.kind === 'symlink');
    }
    this.record(target);
    const kept = Object.entries(meta.xattrs).filter(([k]) => isLayerXattr(k));
    // Not through a hard link: its inode got its xattrs from its own member, and may be shared with the cache of
    // unpacked base images (builder/store/unpacked-cache.ts), which nothing may change in place.
    if (kept.length > 0 && node.kind !== 'symlink' && node.kind !== 'hardlink') this.xattrs.set(target, Object.fromEntries(kept));
  }

  /** A member name as path components; absolute names and '..' are refused, "./" prefixes dropped. */
  private memberPath(raw: string, entry: string): string[] {
    if (raw.includes('\0')) throw this.unsafe(entry, 'has a NUL byte in its path');
    if (raw.startsWith('/')) throw this.unsafe(entry, 'has an absolute path');
    const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) throw this.unsafe(entry, 'contains ".."');
    return parts;
  }

  private whiteout(entry: string, parentParts: string[], name: string): void {
    // Other ".wh..wh." names are aufs bookkeeping (e.g. .wh..wh.plnk), which docker skips too.
    if (name.startsWith(WHITEOUT_PREFIX)) return;
    if (name === '' || name === '.' || name === '..') throw this.unsafe(entry, 'is a whiteout of no valid name');
    const parent = this.resolver.dir(parentParts, entry, false);
    if (parent === undefined) return;
    const target = join(parent, name);
    // A whiteout only deletes what lower layers had (image-spec layer.md § Whiteouts), so this layer's own
    // entries survive in whatever order the layer lists them.
    if (this.added.has(target)) return;
    if (this.aboveAdded.has(target)) this.prune(target);
    else rmSync(target, { recursive: true, force: true });
    this.resolver.invalidate();
  }

  /** Removes everything under `dir` that this layer did not write. */
  private prune(dir: string): void {
    if (!lstatIfExists(dir)?.isDirectory()) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (this.added.has(path) || this.aboveAdded.has(path)) this.prune(path);
      else rmSync(path, { recursive: true, force: true });
    }
    this.resolver.invalidate();
  }

  /** The existing path a hard link points to; refused when outside the root, missing or a directory. */
  private linkSource(entry: string, linkname: string): string {
    const parts = this.memberPath(linkname, entry);
    const missing = (): KilnError => this.unsafe(entry, `is a hard link to "${linkname}", which does not exist in the layers so far`);
    if (parts.length === 0) throw missing();
    const parent = this.resolver.dir(parts.slice(0, -1), entry, false);
    if (parent === undefined) throw missing();
    const source = join(parent, parts[parts.length - 1] as string);
    const st = lstatIfExists(source);
    if (!st) throw missing();
    if (st.isDirectory()) throw this.unsafe(entry, `is a hard link to the directory "${linkname}"`);
    return source;
  }

  /** Removes what is at `path` (the link itself for a symlink) so an entry of another kind can take its place. */
  private clear(path: string, st: Stats | undefined): void {
    if (!st) return;
    if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
    this.resolver.invalidate();
  }

  /** Owner (as root), mode with setuid/setgid/sticky (after chown, which clears them) and times. */
  private setMeta(path: string, meta: MemberMeta, isSymlink: boolean): void {
    if (this.asRoot) lchownSync(path, meta.uid, meta.gid);
    if (!isSymlink) chmodSync(path, meta.mode & 0o7777);
    if (isSymlink) lutimesSync(path, meta.mtime, meta.mtime);
    else utimesSync(path, meta.mtime, meta.mtime);
  }

  /**
   * Whether `path` is still reached without symlinks. Work deferred to the end is keyed by path, and a later entry
   * may have replaced a parent directory with a symlink (to anywhere): following it would act outside the root.
   */
  private reachedDirectly(path: string): boolean {
    const parent = dirname(path);
    try {
      return realpathSync(parent) === parent;
    } catch {
      return false;
    }
  }

  private record(path: string): void {
    this.added.add(path);
    for (let dir = dirname(path); dir !== this.root && dir.startsWith(this.root); dir = dirname(dir)) {
      if (this.aboveAdded.has(dir)) break;
      this.aboveAdded.add(dir);
    }
  }
}

/** The real path of an existing rootfs a layer is applied onto; NOT_FOUND when there is none. */
export async function realRoot(rootfs: string, layer: string): Promise<string> {
  return realpath(rootfs).catch((err: unknown) => {
    throw new KilnError('NOT_FOUND', `rootfs ${rootfs} for layer ${layer} does not exist: create it first`, { cause: err });
  });
}

/** lstat, or undefined when nothing is there (ENOENT, or ENOTDIR for a path through a file). */
export function lstatIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
