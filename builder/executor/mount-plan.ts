import { chmod, chown, lstat, mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import { resolveInRoot } from './resolve-in-root.js';
import type { RunMount } from './types.js';

/** Host paths of one run's private directory (all beside `upper`, so the workdir is on the upper's mount). */
export interface RunDirs {
  merged: string;
  scaffold: string;
  secrets: string;
  hosts: string;
  resolv: string;
}

/** The script's mount operations, in order, as positional words (never interpolated into the script). */
export interface MountPlan {
  ops: string[];
  /** Resolved cwd relative to the root ('' for /), for `mkdir -p` in the merged tree. */
  cwdRel: string;
}

type Kind = 'dir' | 'file';

/**
 * Resolves every mount target inside the rootfs, creates the missing ones (and their parents) in the scaffold
 * lower dir so nothing of the runtime lands in the upper dir, and lists the script's mount operations.
 */
export async function planMounts(
  rootfs: string,
  cwd: string,
  mounts: RunMount[],
  dirs: RunDirs,
  rootless: boolean,
): Promise<MountPlan> {
  const scaffold = new Scaffold(rootfs, dirs.scaffold, rootless);
  const ops: string[] = [];
  const at = (rel: string): string => join(dirs.merged, rel);

  const cwdResolved = await resolveInRoot(rootfs, cwd);
  if (cwdResolved.stats !== undefined && !cwdResolved.stats.isDirectory()) {
    throw new KilnError('VALIDATION', `WORKDIR ${cwd} is not a directory in the rootfs`, {
      hint: 'point WORKDIR at a directory',
    });
  }

  // The runtime's own mount points; a RUN --mount may not sit on, above or below them.
  const reserved = [
    await scaffold.target('/proc', 'dir'),
    await scaffold.target('/dev', 'dir'),
    await scaffold.target('/etc/hosts', 'file'),
    await scaffold.target('/etc/resolv.conf', 'file'),
  ] as const;
  ops.push('proc', at(reserved[0]), 'dev', at(reserved[1]));
  ops.push('bind', dirs.hosts, at(reserved[2]), 'rw', 'bind', dirs.resolv, at(reserved[3]), 'rw');

  const sorted = [...mounts].sort((a, b) => depth(a.target) - depth(b.target));
  const placed: { target: string; rel: string; type: RunMount['type'] }[] = [];
  if (mounts.some((m) => m.type === 'secret')) ops.push('secrets', dirs.secrets);
  for (const [index, m] of sorted.entries()) {
    const target = checkTarget(m.target, placed);
    const kind = await sourceKind(m);
    // A target inside an earlier RUN --mount lives in that mount, not in the rootfs: no scaffold for it.
    const parent = placed.filter((p) => isUnder(target, p.target)).pop();
    let rel: string;
    if (parent !== undefined) {
      rel = posix.join(parent.rel, posix.relative(parent.target, target));
      if (parent.type === 'tmpfs') ops.push('need', at(rel), kind);
    } else if (inRuntimeDev(target)) {
      // Below /dev (BuildKit's /dev/pipes/ heredoc scripts): the point is made in the RUN's /dev tmpfs, not the rootfs.
      rel = posix.join(reserved[1], posix.relative('/dev', target));
      ops.push('need', at(rel), kind);
    } else {
      rel = await scaffold.target(target, kind);
      const clash = rel === '' ? '' : reserved.find((r) => rel === r || isUnder(rel, r) || isUnder(r, rel));
      if (clash !== undefined) {
        throw new KilnError('VALIDATION', `RUN --mount target ${m.target} overlaps /${clash}, which RUN manages`, {
          hint: 'mount somewhere else',
        });
      }
    }
    placed.push({ target, rel, type: m.type });
    ops.push(...mountOp(m, at(rel), join(dirs.secrets, String(index))));
  }
  await scaffold.finish();
  return { ops, cwdRel: cwdResolved.rel };
}

function mountOp(m: RunMount, dest: string, staged: string): string[] {
  switch (m.type) {
    case 'bind':
      return ['bind', m.source, dest, m.readonly ? 'ro' : 'rw'];
    case 'cache':
      return ['bind', m.source, dest, m.readonly === true ? 'ro' : 'rw'];
    case 'secret':
      return ['secret', m.source, dest, staged, (m.mode ?? 0o400).toString(8), String(m.uid ?? 0), String(m.gid ?? 0)];
    case 'tmpfs':
      return ['tmpfs', dest, `nosuid,nodev,mode=1777${m.size === undefined ? '' : `,size=${m.size}`}`];
  }
}

/** Whether the target is a directory or a file, from the source it shows; checks the source exists. */
async function sourceKind(m: RunMount): Promise<Kind> {
  if (m.type === 'tmpfs') return 'dir';
  let st: Stats;
  try {
    st = await stat(m.source);
  } catch (err) {
    throw new KilnError('NOT_FOUND', `RUN --mount=type=${m.type} source ${m.source} does not exist`, {
      cause: err,
      hint: m.type === 'secret' ? 'pass the secret with --secret id=…,src=FILE' : 'check the mount source',
    });
  }
  if (m.type === 'secret' && !st.isFile()) {
    throw new KilnError('VALIDATION', `RUN --mount=type=secret source ${m.source} is not a regular file`, {
      hint: 'point the secret at a file',
    });
  }
  if (m.type === 'cache' && !st.isDirectory()) {
    throw new KilnError('VALIDATION', `RUN --mount=type=cache source ${m.source} is not a directory`, {
      hint: 'use a directory for the cache',
    });
  }
  return st.isDirectory() ? 'dir' : 'file';
}

function checkTarget(target: string, placed: { target: string }[]): string {
  if (!target.startsWith('/') || target.includes('\0')) {
    throw new KilnError('VALIDATION', `RUN --mount target ${JSON.stringify(target)} is not an absolute path`, {
      hint: 'write target=/absolute/path',
    });
  }
  const normal = posix.normalize(target).replace(/\/+$/, '') || '/';
  if (normal === '/') {
    throw new KilnError('VALIDATION', 'RUN --mount target / would hide the whole rootfs', { hint: 'mount below /' });
  }
  if (placed.some((p) => p.target === normal)) {
    throw new KilnError('VALIDATION', `RUN --mount target ${normal} is used twice`, { hint: 'give each mount its own target' });
  }
  return normal;
}

/** What the `dev` operation puts in /dev: a RUN --mount may not replace these. */
const DEV_ENTRIES = new Set(['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'fd', 'stdin', 'stdout', 'stderr', 'ptmx']);

/** A target inside the runtime's /dev tmpfs that does not touch what the runtime put there. */
function inRuntimeDev(target: string): boolean {
  const parts = target.split('/').filter((p) => p !== '');
  return parts.length >= 2 && parts[0] === 'dev' && !DEV_ENTRIES.has(parts[1]!);
}

function depth(target: string): number {
  return target.split('/').filter((p) => p !== '').length;
}

function isUnder(path: string, dir: string): boolean {
  return path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** The scaffold lower dir: empty mount points, under copies of their existing parents' metadata. */
class Scaffold {
  private readonly made = new Set<string>();
  /** Mirrored directories get their rootfs times back last, after their children were created. */
  private readonly times: { path: string; st: Stats }[] = [];

  constructor(
    private readonly rootfs: string,
    private readonly dir: string,
    private readonly rootless: boolean,
  ) {}

  /** Resolves `target` in the rootfs and makes sure the merged tree has it, as `kind`; returns the resolved rel. */
  async target(target: string, kind: Kind): Promise<string> {
    const r = await resolveInRoot(this.rootfs, target);
    if (r.stats !== undefined) {
      if (r.stats.isDirectory() !== (kind === 'dir')) {
        throw new KilnError('VALIDATION', `mount target ${target} is a ${r.stats.isDirectory() ? 'directory' : 'file'} in the rootfs but the mount is a ${kind === 'dir' ? 'directory' : 'file'}`, {
          hint: 'choose a target of the same type as the source',
        });
      }
      return r.rel;
    }
    const parts = r.rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const rel = parts.slice(0, i + 1).join('/');
      if (this.made.has(rel)) continue;
      this.made.add(rel);
      const path = join(this.dir, rel);
      if (i < r.existing) await this.mirror(rel, path);
      else if (i < parts.length - 1 || kind === 'dir') await mkdir(path, { mode: 0o755 });
      else await writeFile(path, '', { mode: 0o644 });
    }
    return r.rel;
  }

  async finish(): Promise<void> {
    for (const { path, st } of this.times.reverse()) await utimes(path, st.atime, st.mtime);
  }

  /** Overlay shows the top-most lower's directory attributes, and copy-up keeps them: they must be the rootfs'. */
  private async mirror(rel: string, path: string): Promise<void> {
    const st = await lstat(join(this.rootfs, rel));
    await mkdir(path);
    await chmod(path, st.mode & 0o7777);
    // Rootless, the ids of the rootfs are our own (or unmapped): chown to them is neither needed nor allowed.
    if (!this.rootless) await chown(path, st.uid, st.gid);
    this.times.push({ path, st });
  }
}
