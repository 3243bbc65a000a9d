import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { imageFromDirectory } from '../../builder/directory-image.js';
import { openOciLayout } from '../../oci/layout/layout-target.js';
import { makeBusyboxRootfs } from './busybox-rootfs.js';
import { runKiln, type KilnRun } from './kiln.js';

/** A temp workspace for build tests: a busybox base image as an OCI layout, a data dir and context dirs. */
export interface BuildWorkspace {
  dir: string;
  /** `oci-layout://…:base` — pass as `--build-context busybox=<this>`. */
  baseContext: string;
  baseLayout: string;
  dataDir: string;
  /** Writes files (path → content) into a new context dir and returns it. */
  context(files: Record<string, string>, name?: string): Promise<string>;
  /** Runs `kiln build` with this workspace's data dir and the busybox base as `busybox`. */
  build(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<KilnRun>;
  /** Runs any kiln command with this workspace's data dir. */
  kiln(args: string[], options?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<KilnRun>;
  cleanup(): Promise<void>;
}

/** Creates a workspace with the busybox base image (tag `base`). */
export async function buildWorkspace(): Promise<BuildWorkspace> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-build-test-'));
  const rootfs = await makeBusyboxRootfs(join(dir, 'rootfs'));
  const baseLayout = join(dir, 'base');
  const target = await openOciLayout({ dir: baseLayout, mode: 'write' });
  await imageFromDirectory({ directory: rootfs, target, tag: 'base', config: { Cmd: ['/bin/sh'] } });
  await target.close();
  const dataDir = join(dir, 'data');
  let contexts = 0;
  const kiln = (args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<KilnRun> =>
    runKiln(args, { ...options, env: { KILN_DATA_DIR: dataDir, ...options.env } });
  return {
    dir,
    baseLayout,
    baseContext: `oci-layout://${baseLayout}:base`,
    dataDir,
    async context(files, name) {
      const ctx = join(dir, name ?? `ctx-${++contexts}`);
      await mkdir(ctx, { recursive: true });
      for (const [path, content] of Object.entries(files)) {
        await mkdir(dirname(join(ctx, path)), { recursive: true });
        await writeFile(join(ctx, path), content);
      }
      return ctx;
    },
    build: (args, options) => kiln(['build', '--progress', 'plain', '--build-context', `busybox=oci-layout://${baseLayout}:base`, ...args], options),
    kiln,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** The layers' tar bytes (decompressed) and the config of an image in an OCI layout at `dir` (its only image). */
export async function readLayoutImage(dir: string): Promise<{ config: Record<string, unknown>; configBytes: Buffer; layers: Buffer[]; manifestBytes: Buffer }> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (d: string): Promise<Buffer> => readFile(join(dir, 'blobs', ...d.split(':')));
  const first = index.manifests[0];
  if (!first) throw new Error(`${dir} holds no image`);
  const manifestBytes = await blob(first.digest);
  const manifest = JSON.parse(manifestBytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  const configBytes = await blob(manifest.config.digest);
  const layers = await Promise.all(manifest.layers.map(async (l) => gunzipSync(await blob(l.digest))));
  return { config: JSON.parse(configBytes.toString()) as Record<string, unknown>, configBytes, layers, manifestBytes };
}

/** Names of the members of a tar (ustar/pax; enough for our own layers). */
export function tarNames(tar: Buffer): string[] {
  const names: string[] = [];
  let off = 0;
  let paxPath: string | undefined;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (s: number, n: number): string => header.subarray(s, s + n).toString('utf8').replace(/\0.*$/s, '');
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const prefix = field(345, 155);
    const body = tar.subarray(off + 512, off + 512 + size);
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = m?.[1];
    } else {
      names.push(paxPath ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)));
      paxPath = undefined;
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

/** Paths of everything under `dir` (for "nothing left behind" checks). */
export async function listTree(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String);
  } catch (err) {
    // Only a missing dir is empty: any other failure (e.g. a leaked tree with an escaping symlink) must show.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Lines of /proc/mounts under `prefix`. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  return (await readFile('/proc/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1]?.startsWith(prefix));
}
