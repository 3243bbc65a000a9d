import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { LayerEntry } from '../layer/entry.js';
import { createLimiter } from '../../oci/concurrency.js';
import { KilnError } from '../../oci/errors.js';
import { archiveEntries } from './add-archive.js';
import { download, isGitSource, isHttpSource, parseChecksum, type Download } from './add-url.js';
import { parseChmod, type ChmodSpec } from './chmod.js';
import { collectLocalSources, digestUnits, type CopySource, type CopyUnit, type SourceFile } from './copy-sources.js';
import { DestTree } from './dest-tree.js';
import { isTarFile } from './tar-read.js';

export type { CopySource } from './copy-sources.js';

/** One COPY or ADD step, its arguments already variable-expanded. */
export interface PlanCopyOptions {
  source: CopySource;
  /** Source arguments: paths or Go filepath.Match globs relative to the source root; URLs for ADD. */
  patterns: string[];
  /** Heredoc files (COPY <<EOF /dest). */
  inline?: { name: string; content: Buffer }[];
  /** Destination as written; relative is against `workdir`; a trailing '/' makes it a directory. */
  dest: string;
  /** Absolute container path. */
  workdir: string;
  /** The destination stage's current rootfs, to see existing directories and symlinks on the dest path. */
  rootfs: string;
  /** Resolved --chown; without it everything is owned by 0:0. */
  chown?: { uid: number; gid: number };
  /** --chmod, octal or symbolic. */
  chmod?: string;
  parents: boolean;
  excludes: string[];
  /** --link: the copy is planned onto an empty tree, ignoring the rootfs. */
  link: boolean;
  /** ADD semantics: local tar archives extracted, http(s) URLs downloaded. */
  /** `unpack: false` (ADD --unpack=false) copies local archives as files instead of extracting them. */
  add?: { tmpDir: string; checksum?: string; epoch: number; unpack?: boolean | undefined };
  /** Where heredoc contents are written for the layer writer (default: `add.tmpDir`). */
  tmpDir?: string;
}

/** The layer entries of a COPY/ADD and the digest of everything it read (the cache key's input part). */
export interface CopyPlan {
  entries: LayerEntry[];
  inputsDigest: string;
}

/**
 * A plan whose sources are not read yet: `lookupDigest` gives what digestCopyInputs would, reading only the files
 * whose digest `known` (by absolute source path, e.g. the layer writer's contentDigests) does not hold.
 */
export interface DeferredCopyPlan {
  entries: LayerEntry[];
  lookupDigest(known?: ReadonlyMap<string, string>): Promise<string>;
}

/** A unit of a step that is not a local path: a downloaded URL or a heredoc. */
type ExtraUnit = { type: 'url'; url: string; download: Download } | { type: 'inline'; name: string; content: Buffer; sha256: string };

interface Collected {
  units: CopyUnit[];
  extras: ExtraUnit[];
  chmod: ChmodSpec | undefined;
}

const conflictLimit = createLimiter(64);

/** The digest `planCopy` would give, without a rootfs: for looking up the cache before materialising anything. */
export async function digestCopyInputs(options: Omit<PlanCopyOptions, 'rootfs'>): Promise<string> {
  const { units, extras } = await collect(options);
  return inputsDigest(options, units, extras);
}

/** Plans a COPY/ADD: the entries of its layer, with BuildKit's rules for sources, destination and metadata. */
export async function planCopy(options: PlanCopyOptions): Promise<CopyPlan> {
  const collected = await collect(options);
  return { entries: await planEntries(options, collected), inputsDigest: inputsDigest(options, collected.units, collected.extras) };
}

/**
 * planCopy without reading the local sources' content first (the entries need only their stat), for a step whose
 * cache lookup cannot hit: the layer can be written while they are hashed for its key.
 */
export async function planCopyDeferred(options: PlanCopyOptions): Promise<DeferredCopyPlan> {
  const collected = await collect(options, true);
  const entries = await planEntries(options, collected);
  return {
    entries,
    // As digestCopyInputs, which never has the owner (the step's key holds --chown as written).
    lookupDigest: async (known) => {
      await digestUnits(collected.units, options.source, known);
      return inputsDigest({ ...options, chown: undefined }, collected.units, collected.extras);
    },
  };
}

async function planEntries(options: PlanCopyOptions, collected: Collected): Promise<LayerEntry[]> {
  const instruction = options.add ? 'ADD' : 'COPY';
  const { units, extras, chmod } = collected;
  const owner = options.chown ?? { uid: 0, gid: 0 };
  const now = Math.floor(Date.now() / 1000);
  const dirMode = chmod?.octal ?? 0o755;
  const tree = new DestTree({ rootfs: options.link ? undefined : options.rootfs, owner, dirMode, now, instruction });

  const destAbs = posix.join('/', options.dest.startsWith('/') ? options.dest : posix.join(options.workdir, options.dest));
  const destRel = destAbs.slice(1).replace(/\/+$/u, '');
  const trailing = /(^|\/)\.?$/u.test(options.dest) || options.dest.endsWith('/.');
  const count = units.length + extras.length;
  if (count === 0) throw new KilnError('CONTEXT_INVALID', `${instruction} failed: no source files were specified`);
  if (count > 1 && !trailing && !options.parents && !(await tree.isDirectory(destRel))) {
    throw new KilnError('DOCKERFILE_INVALID', `${instruction} failed: with more than one source file, the destination must be a directory and end with a "/": "${options.dest}"`);
  }
  await tree.ensureDir(trailing ? destRel : posix.dirname(destRel).replace(/^\.$/u, ''));

  const hardlinks = new Map<string, string>();
  const fileEntry = (file: SourceFile, path: string): LayerEntry => {
    const mode = chmod ? chmod.apply(Number(file.stat.mode), false) : Number(file.stat.mode) & 0o7777;
    const meta = { path, mode, uid: owner.uid, gid: owner.gid, mtime: Number(file.stat.mtimeMs / 1000n) };
    if (file.stat.nlink > 1n) {
      // Hard links inside one copy stay hard links, as BuildKit's copier keeps them.
      const key = `${file.stat.dev}:${file.stat.ino}`;
      const first = hardlinks.get(key);
      if (first !== undefined) return { ...meta, type: 'hardlink', linkname: first };
      hardlinks.set(key, path);
    }
    return { ...meta, type: 'file', source: file.abs, size: Number(file.stat.size) };
  };

  for (const unit of units) {
    if (unit.type === 'file') {
      if (options.add && options.add.unpack !== false && (await isTarFile(unit.file.abs))) {
        const dir = await tree.ensureDir(destRel, 0o755);
        const entries = await archiveEntries({
          file: unit.file.abs,
          subject: `${options.source.name}: ${unit.file.rootRel}`,
          destDir: dir,
          tmpDir: options.add.tmpDir,
          chown: options.chown,
        });
        for (const e of entries) tree.add(e, false);
        continue;
      }
      const target = await tree.fileTarget(destRel, unit.name);
      tree.add(fileEntry(unit.file, target));
      continue;
    }
    const dir = await tree.treeTarget(destRel, Number(unit.dir.stat.mtimeMs / 1000n));
    for (const item of unit.items) {
      const path = posix.join(dir, item.rel);
      const mtime = Number(item.stat.mtimeMs / 1000n);
      if (item.kind === 'file') tree.add(fileEntry(item, path));
      else if (item.kind === 'directory') {
        const mode = chmod ? chmod.apply(Number(item.stat.mode), true) : Number(item.stat.mode) & 0o7777;
        tree.add({ type: 'directory', path, mode, uid: owner.uid, gid: owner.gid, mtime });
      } else if (item.kind === 'symlink') {
        tree.add({ type: 'symlink', path, mode: 0o777, uid: owner.uid, gid: owner.gid, mtime, linkname: item.linkname ?? (await readlink(item.abs)) });
      }
      // Sockets, fifos and devices have no place in a layer a builder writes: they are skipped.
    }
  }
  for (const extra of extras) {
    if (extra.type === 'url') {
      const target = await tree.fileTarget(destRel, extra.download.name);
      const mode = chmod ? chmod.apply(0o600, false) : 0o600;
      const mtime = extra.download.mtime ?? options.add?.epoch ?? now;
      tree.add({ type: 'file', path: target, mode, uid: owner.uid, gid: owner.gid, mtime, source: extra.download.path, size: extra.download.size });
    } else {
      const target = await tree.fileTarget(destRel, extra.name);
      const source = await writeInline(options, extra);
      const mode = chmod ? chmod.apply(0o644, false) : 0o644;
      tree.add({ type: 'file', path: target, mode, uid: owner.uid, gid: owner.gid, mtime: now, source, size: extra.content.length });
    }
  }
  const entries = tree.entries();
  await checkConflicts(tree, entries);
  return entries;
}

/** BuildKit refuses a directory over an existing non-directory and a file over an existing directory. */
async function checkConflicts(tree: DestTree, entries: LayerEntry[]): Promise<void> {
  await Promise.all(entries.map((e) => conflictLimit(() => tree.checkReplace(e))));
}

async function writeInline(options: Omit<PlanCopyOptions, 'rootfs'>, extra: { name: string; content: Buffer }): Promise<string> {
  const base = options.tmpDir ?? options.add?.tmpDir;
  if (base === undefined) throw new KilnError('USAGE', `COPY <<${extra.name}: planCopy needs options.tmpDir to hold heredoc contents`);
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(join(base, 'heredoc-'));
  const path = join(dir, 'content');
  await writeFile(path, extra.content, { mode: 0o600 });
  return path;
}

async function collect(options: Omit<PlanCopyOptions, 'rootfs'>, deferDigests = false): Promise<Collected> {
  const instruction = options.add ? 'ADD' : 'COPY';
  const chmod = options.chmod === undefined || options.chmod === '' ? undefined : parseChmod(options.chmod);
  const local: string[] = [];
  const extras: ExtraUnit[] = [];
  if (options.add?.checksum !== undefined) {
    parseChecksum(options.add.checksum);
    if (options.patterns.length !== 1 || !isHttpSource(options.patterns[0] ?? '')) {
      throw new KilnError('DOCKERFILE_INVALID', 'ADD --checksum needs exactly one source, an http(s) URL');
    }
  }
  for (const p of options.patterns) {
    if (isGitSource(p)) {
      throw new KilnError('UNSUPPORTED', `${instruction} ${p}: Git sources are not supported by kiln build`, {
        hint: 'clone the repository in an earlier stage (RUN git clone …) and COPY --from it, or pass a local checkout',
      });
    }
    if (/^https?:\/\//iu.test(p)) {
      if (!options.add) throw new KilnError('DOCKERFILE_INVALID', `COPY ${p}: source can't be a URL for COPY (use ADD)`);
      extras.push({ type: 'url', url: p, download: await download(p, { tmpDir: options.add.tmpDir, checksum: options.add.checksum }) });
    } else local.push(p);
  }
  for (const i of options.inline ?? []) {
    extras.push({ type: 'inline', name: i.name, content: i.content, sha256: createHash('sha256').update(i.content).digest('hex') });
  }
  const units = await collectLocalSources({ source: options.source, patterns: local, excludes: options.excludes, parents: options.parents, instruction, deferDigests });
  return { units, extras, chmod };
}

/** sha256 hex over the step's options and, in copy order, every source path's type, mode, size, digest and link. */
function inputsDigest(options: Omit<PlanCopyOptions, 'rootfs'>, units: CopyUnit[], extras: ExtraUnit[]): string {
  const h = createHash('sha256');
  const line = (v: unknown): void => {
    h.update(JSON.stringify(v));
    h.update('\n');
  };
  line({
    v: 1,
    add: options.add ? { checksum: options.add.checksum ?? null } : null,
    dest: options.dest,
    workdir: options.workdir,
    owner: options.chown ?? { uid: 0, gid: 0 },
    chmod: options.chmod ?? null,
    parents: options.parents,
    excludes: options.excludes,
    link: options.link,
  });
  const rec = (f: SourceFile, rel: string): void =>
    line([rel, f.kind, Number(f.stat.mode) & 0o7777, Number(f.stat.size), f.sha256 ?? null, f.linkname ?? null]);
  for (const u of units) {
    if (u.type === 'file') {
      line(['file', u.name, u.fromWildcard]);
      rec(u.file, u.file.rootRel);
    } else {
      line([u.type, u.dir.rootRel, Number(u.dir.stat.mode) & 0o7777]);
      for (const item of u.items) rec(item, item.rel);
    }
  }
  for (const e of extras) line(e.type === 'url' ? ['url', e.url, e.download.name, e.download.sha256] : ['inline', e.name, e.sha256]);
  return h.digest('hex');
}
