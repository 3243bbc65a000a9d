import { execFile } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  createReadStream,
  constants as fsConstants,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { decompressStream, detectCompression } from '../../oci/compression.js';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from '../layer/order.js';
import { LayerTarReader, type LayerTarEntry } from '../layer/tar-reader.js';
import { RootResolver } from './resolve.js';
import { isLayerXattr, writeXattrs, type Xattrs } from './xattrs.js';

const execFileAsync = promisify(execFile);

/** What to apply where. */
export interface ApplyLayerOptions {
  /** Existing directory the layer is extracted onto. */
  rootfs: string;
  /** Layer blob: gzip, zstd or plain tar (detected from its first bytes). */
  blob: string;
  /** Names the layer in errors, e.g. its digest. */
  name: string;
  /** Size-bomb stops: total bytes of file data (default 64 GiB) and tar members (default 1,000,000). */
  limits?: { maxBytes?: number; maxEntries?: number };
}

const DEFAULT_MAX_BYTES = 64 * 1024 ** 3;
const DEFAULT_MAX_ENTRIES = 1_000_000;

/**
 * Extracts a layer onto a rootfs as docker does: whiteouts delete, opaque markers hide what lower layers had in a
 * directory (whatever their position in the tar), an entry replaces whatever was at its path. Every path is resolved
 * inside the root (symlinks followed within it) and anything that would land outside it, and any device, is refused
 * (UNSAFE_PATH) before it is written. FIFOs are made with mkfifo(1), as node cannot.
 */
export async function applyLayer(options: ApplyLayerOptions): Promise<{ entries: number; bytes: number }> {
  const root = await realpath(options.rootfs).catch((err: unknown) => {
    throw new KilnError('NOT_FOUND', `rootfs ${options.rootfs} for layer ${options.name} does not exist: create it first`, { cause: err });
  });
  const head = Buffer.alloc(4);
  const fh = await open(options.blob, 'r').catch((err: unknown) => {
    throw new KilnError('NOT_FOUND', `layer ${options.name}: blob ${options.blob} can't be opened: ${errorMessage(err)}`, { cause: err });
  });
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const applier = new Applier(root, options);
  await pipeline(createReadStream(options.blob), decompressStream(detectCompression(head)), async (source: AsyncIterable<Buffer>) => {
    const reader = new LayerTarReader(source, options.name);
    for (let entry = await reader.next(); entry !== null; entry = await reader.next()) await applier.apply(entry, reader);
    // Padding after the end-of-archive blocks counts toward the byte budget, so trailing junk can't be a bomb.
    await reader.drain(applier.bytesLeft());
  });
  await applier.finish();
  return { entries: applier.entries, bytes: applier.bytes };
}

/**
 * Applies entries one by one. File-system calls are synchronous on purpose: a layer is tens of thousands of tiny
 * syscalls and each async one is a thread-pool round trip queued behind gunzip's jobs, which made extraction several
 * times slower than GNU tar; the event loop still turns whenever the tar reader waits for data.
 */
class Applier {
  entries = 0;
  bytes = 0;
  private readonly subject: string;
  private readonly resolver: RootResolver;
  private readonly maxBytes: number;
  private readonly maxEntries: number;
  private readonly asRoot = process.getuid?.() === 0;
  /** Real paths this layer wrote, and every directory above one of them: what an opaque marker must keep. */
  private readonly added = new Set<string>();
  private readonly aboveAdded = new Set<string>();
  private readonly opaque = new Set<string>();
  /** Directory metadata is set last: writing their children would change their mtimes again. */
  private readonly dirs: Array<{ path: string; entry: LayerTarEntry }> = [];
  private readonly xattrs = new Map<string, Xattrs>();

  constructor(
    private readonly root: string,
    options: ApplyLayerOptions,
  ) {
    this.subject = `layer ${options.name}`;
    this.resolver = new RootResolver(root, this.subject);
    this.maxBytes = options.limits?.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxEntries = options.limits?.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  async apply(entry: LayerTarEntry, reader: LayerTarReader): Promise<void> {
    if (++this.entries > this.maxEntries) {
      throw new KilnError('TOO_LARGE', `${this.subject} has more than ${this.maxEntries} entries; raise the limit if the image is trusted`);
    }
    const parts = this.memberPath(entry.name, entry.name);
    try {
      await this.applyAt(entry, parts, reader);
    } catch (err) {
      if (err instanceof KilnError) throw err;
      throw new KilnError('BUILD_FAILED', `${this.subject}: entry "${entry.name}" could not be extracted: ${errorMessage(err)}`, { cause: err });
    }
  }

  /** What is left of the byte budget. */
  bytesLeft(): number {
    return this.maxBytes - this.bytes;
  }

  /** Hides lower content under opaque directories, then sets directory metadata and xattrs. */
  async finish(): Promise<void> {
    for (const dir of this.opaque) if (this.reachedDirectly(dir)) this.prune(dir);
    for (const { path, entry } of this.dirs.reverse()) {
      if (this.reachedDirectly(path) && lstatIfExists(path)?.isDirectory()) this.setMeta(path, entry, false);
    }
    for (const path of this.xattrs.keys()) {
      const st = this.reachedDirectly(path) ? lstatIfExists(path) : undefined;
      // A symlink put there later by the same layer would carry the xattrs anywhere it points.
      if (!st || st.isSymbolicLink()) this.xattrs.delete(path);
    }
    await writeXattrs(this.xattrs);
  }

  private async applyAt(entry: LayerTarEntry, parts: string[], reader: LayerTarReader): Promise<void> {
    const type = entry.typeflag;
    if (type === '3' || type === '4') throw this.unsafe(entry.name, `is a ${type === '3' ? 'character' : 'block'} device; layers may not create devices`);
    if (!['0', '\0', '7', '1', '2', '5', '6'].includes(type)) {
      throw new KilnError('VALIDATION', `${this.subject}: entry "${entry.name}" has tar type '${type}', which layers do not use`);
    }
    // The root itself ("./"): its metadata belongs to whoever made the rootfs.
    if (parts.length === 0) return;
    const base = parts[parts.length - 1] as string;
    const parentParts = parts.slice(0, -1);
    if (base === OPAQUE_MARKER) {
      this.opaque.add(this.resolver.dir(parentParts, entry.name, true) as string);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) return this.whiteout(entry.name, parentParts, base.slice(WHITEOUT_PREFIX.length));
    const parent = this.resolver.dir(parentParts, entry.name, true) as string;
    const target = join(parent, base);
    if (type === '5') {
      if (!lstatIfExists(target)?.isDirectory()) {
        this.clear(target);
        mkdirSync(target, 0o700);
      }
      this.dirs.push({ path: target, entry });
    } else if (type === '1') {
      const source = this.linkSource(entry);
      if (source === target) return;
      this.clear(target);
      linkSync(source, target);
    } else {
      this.clear(target);
      if (type === '2') {
        if (entry.linkname === '') throw new KilnError('VALIDATION', `${this.subject}: symlink "${entry.name}" has an empty target`);
        symlinkSync(entry.linkname, target);
      } else if (type === '6') {
        await execFileAsync('mkfifo', ['-m', '600', '--', target]);
      } else {
        await this.writeFile(entry, target, reader);
      }
      this.setMeta(target, entry, type === '2');
    }
    this.record(target);
    const kept = Object.entries(entry.xattrs).filter(([k]) => isLayerXattr(k));
    if (kept.length > 0 && type !== '2') this.xattrs.set(target, Object.fromEntries(kept));
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
    // entries survive in whatever order the tar lists them.
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
  private linkSource(entry: LayerTarEntry): string {
    const parts = this.memberPath(entry.linkname, entry.name);
    const missing = (): KilnError => this.unsafe(entry.name, `is a hard link to "${entry.linkname}", which does not exist in the layers so far`);
    if (parts.length === 0) throw missing();
    const parent = this.resolver.dir(parts.slice(0, -1), entry.name, false);
    if (parent === undefined) throw missing();
    const source = join(parent, parts[parts.length - 1] as string);
    const st = lstatIfExists(source);
    if (!st) throw missing();
    if (st.isDirectory()) throw this.unsafe(entry.name, `is a hard link to the directory "${entry.linkname}"`);
    return source;
  }

  /** Removes what is at `path` (the link itself for a symlink) so an entry of another kind can take its place. */
  private clear(path: string): void {
    const st = lstatIfExists(path);
    if (!st) return;
    if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
    this.resolver.invalidate();
  }

  private async writeFile(entry: LayerTarEntry, target: string, reader: LayerTarReader): Promise<void> {
    if (this.bytes + entry.size > this.maxBytes) {
      throw new KilnError('TOO_LARGE', `${this.subject} holds more than ${this.maxBytes} bytes of files (at "${entry.name}"); raise the limit if the image is trusted`);
    }
    this.bytes += entry.size;
    // O_EXCL|O_NOFOLLOW: the path was just cleared, so anything there now is not ours to write through.
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
    const fd = openSync(target, flags, 0o600);
    try {
      for await (const piece of reader.body()) {
        let offset = 0;
        while (offset < piece.length) offset += writeSync(fd, piece, offset);
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Owner (as root), mode with setuid/setgid/sticky (after chown, which clears them) and times. */
  private setMeta(path: string, entry: LayerTarEntry, isSymlink: boolean): void {
    if (this.asRoot) lchownSync(path, entry.uid, entry.gid);
    if (!isSymlink) chmodSync(path, entry.mode & 0o7777);
    if (isSymlink) lutimesSync(path, entry.mtime, entry.mtime);
    else utimesSync(path, entry.mtime, entry.mtime);
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

  private unsafe(entry: string, why: string): KilnError {
    return new KilnError('UNSAFE_PATH', `${this.subject}: entry "${entry}" ${why}`);
  }
}

/** lstat, or undefined when nothing is there (ENOENT, or ENOTDIR for a path through a file). */
function lstatIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}
