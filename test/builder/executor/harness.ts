import { lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNamespaces, type RunMount, type RunResult, type RunSpec } from '../../../builder/executor/index.js';
import { makeBusyboxRootfs } from '../../support/busybox-rootfs.js';

/** A temp dir with a busybox rootfs shared by a test file's runs (the lower is never modified). */
export interface Sandbox {
  base: string;
  rootfs: string;
  /** A fresh empty upper dir per call. */
  upper(): Promise<string>;
  /** Runs argv with sensible defaults (root, PATH=/bin, cwd /, default network); returns the result and output. */
  run(argv: string[], options?: Partial<RunSpec>): Promise<RunResult & { output: string; upper: string }>;
  dispose(): Promise<void>;
}

export async function makeSandbox(): Promise<Sandbox> {
  const base = await mkdtemp(join(tmpdir(), 'kiln-exec-'));
  const rootfs = await makeBusyboxRootfs(join(base, 'rootfs'));
  let n = 0;
  const upper = async (): Promise<string> => {
    const dir = join(base, `upper-${++n}`);
    await mkdir(dir);
    return dir;
  };
  return {
    base,
    rootfs,
    upper,
    async run(argv, options = {}) {
      const dir = options.upper ?? (await upper());
      const chunks: Buffer[] = [];
      const mounts: RunMount[] = options.mounts ?? [];
      const result = await runInNamespaces({
        rootfs,
        upper: dir,
        argv,
        env: ['PATH=/bin'],
        cwd: '/',
        user: { uid: 0, gid: 0 },
        network: 'default',
        onOutput: (c) => chunks.push(c),
        ...options,
        mounts,
      });
      return { ...result, output: Buffer.concat(chunks).toString('utf8'), upper: dir };
    },
    dispose: () => rm(base, { recursive: true, force: true }),
  };
}

/** Every path below `dir`, '/'-separated and sorted. */
export async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(dir, prefix))).sort()) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    out.push(rel);
    if ((await lstat(join(dir, rel))).isDirectory()) out.push(...(await listTree(dir, rel)));
  }
  return out;
}

/** Lines of the host's /proc/mounts that mention `dir`: what a run must never leave behind. */
export async function mountsUnder(dir: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.includes(dir));
}

/** Pids of live processes whose command line contains `needle` (NUL-separated argv joined by spaces). */
export async function processesWith(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ');
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // The process exited while we looked: it does not count.
    }
  }
  return pids;
}
