import { createHash } from 'node:crypto';
import { chmodSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathExists, readdirOrEmpty } from '../../oci/content/fs-blob-store.js';
import { isLayerXattr, readXattrTree, writeXattrs, type Xattrs } from '../rootfs/xattrs.js';

/** Bumped when the way layers are applied changes, so trees unpacked by an older Kiln are not reused. */
const FORMAT = 'kiln-unpacked-v1';

/**
 * Base images unpacked once, kept by the chain of their layers' diff_ids (`<dir>/<key>/`), and given to each stage
 * that needs a rootfs as a hard-linked clone: new directories, the same file inodes. A rebuild after a one-file
 * change then costs a directory walk instead of inflating and writing the whole base again (buildah keeps its
 * layers unpacked for the same reason).
 *
 * Sharing inodes is safe because nothing writes to an existing non-directory of a rootfs in place: layers and COPY
 * replace a path (unlink, then create O_EXCL), RUN writes to an overlay upper dir, read-write bind mounts get a copy.
 * Hard-link members never rewrite their target's xattrs (see TreeApplier), so the cached inodes stay as unpacked.
 */
export class UnpackedCache {
  private readonly inflight = new Map<string, Promise<string | undefined>>();

  constructor(
    readonly dir: string,
    /** Scratch directory on the same filesystem (unpacked trees are renamed in). */
    private readonly tmpDir: string,
  ) {}

  /** The key of a chain of layers: OCI's ChainID over the diff_ids, under FORMAT. */
  static chainKey(diffIds: readonly string[]): string {
    let chain = FORMAT;
    for (const id of diffIds) chain = createHash('sha256').update(`${chain} ${id}`).digest('hex');
    return chain;
  }

  /**
   * Fills `into` (an existing empty directory) with the tree of the layers `diffIds`, cloned from the cache after
   * `unpack` made it there if it was missing. Returns false, leaving `into` empty, when the tree cannot be cached
   * or cloned here (no getfattr, hard links refused across filesystems or for unmapped owners): the caller then
   * unpacks into `into` itself. Errors of `unpack` (a hostile or corrupt layer) are thrown.
   */
  async cloneInto(diffIds: readonly string[], into: string, unpack: (dir: string) => Promise<void>): Promise<boolean> {
    const key = UnpackedCache.chainKey(diffIds);
    let job = this.inflight.get(key);
    if (!job) {
      job = this.ensure(key, unpack);
      this.inflight.set(key, job);
      job.finally(() => this.inflight.delete(key)).catch(() => undefined);
    }
    const tree = await job;
    if (tree === undefined) return false;
    try {
      await cloneTree(tree, into, await readDirXattrs(`${tree}.xattrs.json`));
      return true;
    } catch {
      // A tree we cannot link from (EXDEV, EPERM for ids the user namespace does not map, EMLINK): unpack instead.
      for (const name of await readdir(into)) await rm(join(into, name), { recursive: true, force: true });
      return false;
    }
  }

  /** Removes every cached tree; returns how many there were. */
  async clear(): Promise<number> {
    let count = 0;
    for (const name of await readdirOrEmpty(this.dir)) {
      if (!name.endsWith('.xattrs.json')) count++;
      await rm(join(this.dir, name), { recursive: true, force: true });
    }
    return count;
  }

  /** The cached tree of `key`, unpacked now if missing; undefined when its directories' xattrs cannot be read. */
  private async ensure(key: string, unpack: (dir: string) => Promise<void>): Promise<string | undefined> {
    const tree = join(this.dir, key);
    if (await pathExists(tree)) return tree;
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = await mkdtemp(join(this.tmpDir, 'unpacked-'));
    try {
      await unpack(tmp);
      let dirXattrs: Record<string, Record<string, string>>;
      try {
        dirXattrs = await collectDirXattrs(tmp);
      } catch {
        return undefined;
      }
      await mkdir(this.dir, { recursive: true });
      // The sidecar first: a tree is only ever visible with its directories' xattrs beside it.
      await writeFile(`${tree}.xattrs.json`, JSON.stringify(dirXattrs));
      try {
        await rename(tmp, tree);
      } catch (err) {
        // Another build unpacked the same chain first: theirs is as good.
        if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
      return tree;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}

/** Layer xattrs of the tree's directories, by path relative to `root` ('' for the root), values hex. */
async function collectDirXattrs(root: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [path, attrs] of await readXattrTree(root)) {
    const kept = Object.entries(attrs).filter(([name]) => isLayerXattr(name));
    if (kept.length === 0 || !lstatSync(path).isDirectory()) continue;
    out[path === root ? '' : path.slice(root.length + 1)] = Object.fromEntries(kept.map(([n, v]) => [n, v.toString('hex')]));
  }
  return out;
}

async function readDirXattrs(file: string): Promise<Record<string, Record<string, string>>> {
  return JSON.parse(await readFile(file, 'utf8')) as Record<string, Record<string, string>>;
}

/**
 * Recreates the directories of `src` under `dst` (owner, mode, times, layer xattrs) and hard-links everything
 * else. Directory times are set last, deepest first, since adding entries changes them.
 */
async function cloneTree(src: string, dst: string, dirXattrs: Record<string, Record<string, string>>): Promise<void> {
  const dirs: string[] = [''];
  for (let i = 0; i < dirs.length; i++) {
    const rel = dirs[i]!;
    for (const entry of readdirSync(join(src, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        mkdirSync(join(dst, child), 0o700);
        dirs.push(child);
      } else linkSync(join(src, child), join(dst, child));
    }
  }
  for (const rel of dirs.reverse()) {
    const st = lstatSync(join(src, rel));
    const target = join(dst, rel);
    if (process.getuid?.() === 0) lchownSync(target, st.uid, st.gid);
    chmodSync(target, st.mode & 0o7777);
    lutimesSync(target, st.atime, st.mtime);
  }
  const xattrs = new Map<string, Xattrs>();
  for (const [rel, attrs] of Object.entries(dirXattrs)) {
    xattrs.set(join(dst, rel), Object.fromEntries(Object.entries(attrs).map(([n, hex]) => [n, Buffer.from(hex, 'hex')])));
  }
  await writeXattrs(xattrs);
}
