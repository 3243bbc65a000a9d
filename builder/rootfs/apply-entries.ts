import { constants as fsConstants, copyFileSync, lstatSync, renameSync } from 'node:fs';
import { KilnError } from '../../oci/errors.js';
import type { LayerEntry } from '../layer/entry.js';
import { FileCopier } from './file-copier.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, compareLayerPaths } from '../layer/order.js';
import { TreeApplier, realRoot, type MemberMeta, type MemberNode } from './tree-applier.js';

/** What to apply where. */
export interface ApplyEntriesOptions {
  /** Existing directory the change is applied onto. */
  rootfs: string;
  /** The entries a layer was just written from (writeLayer accepted them); file sources must still exist. */
  entries: readonly LayerEntry[];
  /** Names the layer in errors, e.g. its digest. */
  name: string;
  /** The epoch the layer was written with: mtimes are clamped to it as the layer holds them. */
  epoch: number;
  /**
   * Rename file sources into the rootfs instead of copying them (a copy across file systems, or for a source with
   * xattrs the layer leaves out). The sources are consumed: only for files nothing reads afterwards. Ignored unless
   * root, as only root can give a moved file the owner a copy would have.
   */
  move?: boolean;
  /**
   * Copy files on a worker thread while the main thread goes on (e.g. writing the layer). Default: when copying
   * at least OFF_THREAD_MIN_FILES files, below which starting the thread costs more than it saves.
   */
  offThread?: boolean;
}

/** Copies from this many files on go to a worker thread by default. */
export const OFF_THREAD_MIN_FILES = 256;

// The tar mtime field holds 11 octal digits; the writer clamps to it and to 0 (tar-header.ts).
const MAX_TAR_MTIME = 0o77777777777;
const MARKER_META: MemberMeta = { mode: 0, uid: 0, gid: 0, mtime: 0, xattrs: {} };

/**
 * Applies a step's change onto a rootfs from its entries, making the same tree (owners, modes, mtimes, xattrs,
 * whiteouts, opaque directories) with the same path checks as applyLayer on the layer writeLayer made of them,
 * without decompressing that layer again: files are copied in the kernel (copy_file_range or a reflink) or moved.
 */
export async function applyEntries(options: ApplyEntriesOptions): Promise<void> {
  const root = await realRoot(options.rootfs, options.name);
  const move = options.move === true && process.getuid?.() === 0;
  const files = move ? 0 : options.entries.reduce((n, e) => (e.type === 'file' ? n + 1 : n), 0);
  const copier = !move && (options.offThread ?? files >= OFF_THREAD_MIN_FILES) ? new FileCopier(`layer ${options.name}`, process.getuid?.() === 0) : undefined;
  try {
    await applyMembers(options, root, move, copier);
  } finally {
    // After a failure the queue is abandoned: the thread stops before the caller removes the rootfs.
    await copier?.close();
  }
}

async function applyMembers(options: ApplyEntriesOptions, root: string, move: boolean, copier: FileCopier | undefined): Promise<void> {
  const tree = new TreeApplier(root, `layer ${options.name}`, copier);
  for (const { name, entry } of members(options.entries)) {
    if (entry.type === 'whiteout' || entry.type === 'opaque') {
      await tree.apply(name, { kind: 'file', write: () => undefined }, MARKER_META);
      continue;
    }
    const meta: MemberMeta = {
      mode: entry.mode & 0o7777,
      uid: entry.uid,
      gid: entry.gid,
      mtime: Math.min(Math.max(0, Math.floor(Math.min(entry.mtime, options.epoch))), MAX_TAR_MTIME),
      xattrs: entry.xattrs ?? {},
    };
    let node: MemberNode;
    if (entry.type === 'file' && copier) node = { kind: 'copy', source: entry.source, size: entry.size };
    else if (entry.type === 'file') node = { kind: 'file', write: (target) => place(entry.source, target, entry.size, move && !entry.foreignXattrs, name) };
    else if (entry.type === 'directory') node = { kind: 'directory' };
    else node = { kind: entry.type, linkname: entry.linkname };
    await tree.apply(name, node, meta);
  }
  await tree.finish();
}

/** The entries under the names the layer's tar gives them (whiteouts and opaque markers as `.wh.` files), in its order. */
function members(entries: readonly LayerEntry[]): Array<{ name: string; entry: LayerEntry }> {
  const seen = new Set<string>();
  const out = entries.map((entry) => {
    const slash = entry.path.lastIndexOf('/');
    const base = entry.path.slice(slash + 1);
    let name = entry.path;
    if (entry.type === 'whiteout') name = `${entry.path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${base}`;
    else if (entry.type === 'opaque') name = `${entry.path}/${OPAQUE_MARKER}`;
    else if (base.startsWith(WHITEOUT_PREFIX)) {
      throw new KilnError('VALIDATION', `layer entry "${entry.path}" uses the reserved whiteout prefix ${WHITEOUT_PREFIX}: rename it`);
    }
    if (seen.has(name)) throw new KilnError('VALIDATION', `layer entry "${entry.path}" is listed twice: keep one entry per path`);
    seen.add(name);
    return { name, entry };
  });
  // Steps list their entries in layer order already; sorting is the exception, checking is cheap.
  const sorted = out.every((m, i) => i === 0 || compareLayerPaths((out[i - 1] as { name: string }).name, m.name) < 0);
  return sorted ? out : out.sort((a, b) => compareLayerPaths(a.name, b.name));
}

/** Puts a file's content at the (just cleared) `target`: renamed when allowed and possible, else copied. */
function place(source: string, target: string, size: number, move: boolean, name: string): void {
  if (move) {
    try {
      renameSync(source, target);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
  }
  // EXCL: like applyLayer's O_EXCL, never writes through whatever may have appeared at the path.
  copyFileSync(source, target, fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE);
  // The layer holds the bytes the writer read: a source that changed since must not make the rootfs disagree.
  const copied = lstatSync(target).size;
  if (copied !== size) {
    throw new KilnError('BUILD_FAILED', `file ${source} for layer entry "${name}" changed size after its layer was written (${size} → ${copied} bytes); rebuild without changing it`);
  }
}
