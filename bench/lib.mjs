// Shared pieces of the benchmarks: peers, free ports, timing with peak RSS, medians, RESULTS.md sections.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';

export const KILN = new URL('../bin/kiln.js', import.meta.url).pathname;

/** Fails with an install hint when a peer binary is missing. */
export function requireBinary(bin, pkg) {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
    throw new Error(`${bin} not found: install it with apt-get install -y ${pkg}`);
  }
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** skopeo's blob-info caches (root and rootless); cleared so earlier runs cannot turn pushes into mounts. */
export const SKOPEO_CACHES = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', join(process.env.HOME ?? '/root', '.local/share/containers/cache/blob-info-cache-v1.boltdb')];
export const clearSkopeoCache = () => SKOPEO_CACHES.forEach((c) => rmSync(c, { force: true }));

/** Peak RSS (VmHWM) of a live process in MiB. */
export function vmHwmMiB(pid) {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Waits for a spawned registry's /v2/ to answer 200; the handle's stop() sends SIGTERM (SIGKILL after 15 s) and awaits the exit. */
async function serving(name, child, host, dir) {
  let gone = false;
  let stderr = '';
  const exited = new Promise((r) => child.once('exit', () => r((gone = true))));
  child.on('error', () => (gone = true));
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-2000)));
  const stop = async () => {
    if (gone) return;
    child.kill('SIGTERM');
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(kill);
  };
  for (let i = 0; i < 150 && !gone; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200) return { name, host, dir, pid: child.pid, stop };
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${name} did not start on ${host}: ${stderr.trim()}`);
}

/** Starts Debian's CNCF registry on a free loopback port with fresh storage; resolves once /v2/ answers. */
export async function startDistribution() {
  requireBinary('docker-registry', 'docker-registry');
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-reg-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(config, `version: 0.1\nlog: { level: error }\nstorage: { filesystem: { rootdirectory: ${dir}/data }, delete: { enabled: true } }\nhttp: { addr: 127.0.0.1:${port} }\n`);
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  return serving('docker-registry', child, `127.0.0.1:${port}`, dir);
}

/** Starts `kiln serve` as its own process (defaults otherwise) with fresh data; `profileDir` adds node --cpu-prof. */
export async function startKiln({ profileDir } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-serve-'));
  const host = `127.0.0.1:${await freePort()}`;
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...prof, KILN, 'serve', '--addr', host, '--data', join(dir, 'data')], { stdio: ['ignore', 'ignore', 'pipe'] });
  return serving('kiln serve', child, host, dir);
}

/** Runs a command, returning wall seconds and its peak RSS in MiB (VmHWM polled from /proc). */
export function timed(cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    let peakKb = 0;
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {}
    }, 10);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.trim().slice(-500)}`));
      else resolve({ seconds, peakMiB: peakKb / 1024 });
    });
  });
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export function machineLine() {
  const v = (cmd) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; node ${process.version}; ${v('skopeo --version')}; ${v('docker-registry --version')}`;
}

/** Replaces (or appends) the `## name` section of bench/RESULTS.md. */
export function writeSection(name, body) {
  const file = new URL('./RESULTS.md', import.meta.url);
  const header = '# Benchmark results\n\nFigures from `npm run bench`, each peer measured in the same run on the same machine.\n';
  let text = existsSync(file) ? readFileSync(file, 'utf8') : header;
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const re = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = re.test(text) ? text.replace(re, block) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
