import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requirePeer } from './peers.js';

const run = promisify(execFile);

/** The Debian mirror debootstrap fetches from; `KILN_TEST_DEBIAN_MIRROR` overrides it (e.g. a local apt cache). */
export const DEBIAN_MIRROR = process.env.KILN_TEST_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

/** Where repeated local runs keep the debootstrapped rootfs (CI starts clean, so it always builds one). */
export const TEST_CACHE_DIR = join(tmpdir(), 'kiln-test-cache');

/**
 * A tar of a `debootstrap --variant=minbase bookworm` rootfs, made at most once a day: cached as
 * `kiln-test-cache/debootstrap-bookworm-minbase-YYYY-MM-DD.tar` (older days are removed, as the mirror moves on).
 * /dev is emptied (debootstrap makes device nodes, which a layer may not hold; a RUN gets its own /dev).
 */
export async function debootstrapTar(suite = 'bookworm'): Promise<string> {
  const day = new Date().toISOString().slice(0, 10);
  const name = `debootstrap-${suite}-minbase-`;
  const tar = join(TEST_CACHE_DIR, `${name}${day}.tar`);
  if ((await stat(tar).catch(() => undefined))?.isFile()) return tar;
  const debootstrap = requirePeer('debootstrap', 'debootstrap');
  const tarBin = requirePeer('tar', 'tar');
  await mkdir(TEST_CACHE_DIR, { recursive: true });
  for (const old of await readdir(TEST_CACHE_DIR)) {
    if (old.startsWith(name)) await rm(join(TEST_CACHE_DIR, old), { force: true, recursive: true });
  }
  const work = await mkdtemp(join(TEST_CACHE_DIR, 'debootstrap-work-'));
  const rootfs = join(work, 'rootfs');
  try {
    try {
      await run(debootstrap, ['--variant=minbase', suite, rootfs, DEBIAN_MIRROR], { maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`debootstrap ${suite} from ${DEBIAN_MIRROR} failed (it needs root and network): ${e.message}\n${(e.stdout ?? '').slice(-2000)}${(e.stderr ?? '').slice(-2000)}`);
    }
    await rm(join(rootfs, 'dev'), { recursive: true, force: true });
    await mkdir(join(rootfs, 'dev'), { mode: 0o755 });
    const partial = join(work, 'rootfs.tar');
    await run(tarBin, ['--numeric-owner', '-C', rootfs, '-cf', partial, '.'], { maxBuffer: 64 << 20 });
    await rename(partial, tar);
    return tar;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Unpacks the cached debootstrap rootfs (see {@link debootstrapTar}) into `dir` (created), returning `dir`. */
export async function debootstrapRootfs(dir: string, suite = 'bookworm'): Promise<string> {
  const tar = await debootstrapTar(suite);
  await mkdir(dir, { recursive: true });
  await run(requirePeer('tar', 'tar'), ['--numeric-owner', '-C', dir, '-xpf', tar], { maxBuffer: 64 << 20 });
  return dir;
}
