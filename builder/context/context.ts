import { createWriteStream } from 'node:fs';
import { chmod, link, lstat, mkdir, mkdtemp, realpath, rm, stat, symlink, utimes } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { loadDockerignore, type IgnoreMatcher } from './dockerignore.js';
import { readTar, type TarLimits } from './tar-read.js';

/** A build context ready to copy from: a directory, its .dockerignore, and what to remove afterwards. */
export interface BuildContext {
  root: string;
  ignore: IgnoreMatcher | undefined;
  /** The ignore file that was used, if any. */
  ignoreFile: string | undefined;
  cleanup(): Promise<void>;
}

/** Options of `openBuildContext`. */
export interface OpenBuildContextOptions {
  /** The tar read when the spec is '-'. */
  stdin?: Readable;
  /** Where a context from stdin is extracted. */
  tmpDir: string;
  /** The Dockerfile (for `<name>.dockerignore` beside it); relative to the archive root for '-'. */
  dockerfile?: string;
  limits?: TarLimits;
}

/**
 * Opens a build context: a directory, or '-' for a tar (plain, gzip, bzip2, xz, zstd) on stdin that is
 * extracted safely into `tmpDir`. A missing or non-directory context is CONTEXT_INVALID.
 */
export async function openBuildContext(spec: string, options: OpenBuildContextOptions): Promise<BuildContext> {
  if (spec === '-') return openStdinContext(options);
  let root: string;
  try {
    root = await realpath(spec);
    if (!(await stat(root)).isDirectory()) throw new KilnError('CONTEXT_INVALID', `build context ${spec} is not a directory: pass a directory, or "-" for a tar on stdin`);
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError('CONTEXT_INVALID', `build context ${spec} does not exist: pass a directory, or "-" for a tar on stdin`, { cause: err });
  }
  const loaded = await loadDockerignore({ contextDir: root, ...(options.dockerfile === undefined ? {} : { dockerfile: resolve(options.dockerfile) }) });
  return { root, ignore: loaded?.matcher, ignoreFile: loaded?.file, cleanup: async () => undefined };
}

async function openStdinContext(options: OpenBuildContextOptions): Promise<BuildContext> {
  if (!options.stdin) throw new KilnError('USAGE', 'build context "-" reads a tar from stdin, but no stdin was given');
  await mkdir(options.tmpDir, { recursive: true });
  const root = await mkdtemp(join(options.tmpDir, 'context-'));
  const cleanup = (): Promise<void> => rm(root, { recursive: true, force: true });
  try {
    await extractInto(options.stdin, root, options.limits);
    const dockerfile = options.dockerfile === undefined ? undefined : join(root, options.dockerfile.replace(/^\/+/u, ''));
    const loaded = await loadDockerignore({ contextDir: root, ...(dockerfile === undefined ? {} : { dockerfile }) });
    return { root, ignore: loaded?.matcher, ignoreFile: loaded?.file, cleanup };
  } catch (err) {
    await cleanup();
    if (err instanceof KilnError) throw err;
    throw new KilnError('CONTEXT_INVALID', `cannot read the build context from stdin: ${errorMessage(err)}`, { cause: err });
  }
}

/** Extracts a checked tar into the empty directory `root`; directory modes and times are set last. */
async function extractInto(input: Readable, root: string, limits: TarLimits | undefined): Promise<void> {
  const dirs: { path: string; mode: number; mtime: number }[] = [];
  const files = new Set<string>();
  await readTar(input, { subject: 'build context on stdin', ...(limits ? { limits } : {}) }, async (item) => {
    const abs = join(root, item.path);
    await mkdir(dirname(abs), { recursive: true });
    const existing = await lstat(abs).catch(() => undefined);
    // As `tar -x`: a directory met again is kept, anything else is replaced.
    if (existing && !(existing.isDirectory() && item.type === 'directory')) await rm(abs, { recursive: true, force: true });
    switch (item.type) {
      case 'directory':
        await mkdir(abs, { recursive: true, mode: 0o700 });
        dirs.push({ path: abs, mode: item.mode, mtime: item.mtime });
        return;
      case 'file':
        await pipeline(item.body, createWriteStream(abs, { mode: 0o600 }));
        await chmod(abs, item.mode);
        await utimes(abs, item.mtime, item.mtime);
        files.add(item.path);
        return;
      case 'symlink':
        // The target is kept as written: a context symlink is only ever resolved inside the context root.
        await symlink(item.linkname, abs);
        return;
      case 'hardlink':
        if (!files.has(item.linkname)) {
          throw new KilnError('UNSAFE_PATH', `build context on stdin: hard link ${item.path} points to "${item.linkname}", which is not an earlier file of the archive`);
        }
        await link(join(root, item.linkname), abs);
        files.add(item.path);
        return;
    }
  });
  // Deepest first, so a read-only directory does not block setting its children.
  for (const d of dirs.reverse()) {
    await chmod(d.path, d.mode);
    await utimes(d.path, d.mtime, d.mtime);
  }
}
