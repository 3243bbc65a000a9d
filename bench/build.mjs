// Build benchmark (issue 5 §7): `kiln build` against Debian's buildah (overlay and vfs storage) in the same run, on
// (a) a multi-stage gcc build on a debootstrap base and (b) `COPY . /ctx` of a 20,000-file, 300 MiB context + RUN.
// Cold build, no-op rebuild and one-file-changed rebuild; medians of --rounds (BENCH_ROUNDS, default 3).
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN, clearSkopeoCache, machineLine, median, requireBinary, startDistribution, timed, writeSection } from './lib.mjs';

const roundsFlag = process.argv.indexOf('--rounds');
const roundsArg = roundsFlag >= 0 ? process.argv[roundsFlag + 1] : process.argv.find((a) => a.startsWith('--rounds='))?.slice(9);
const ROUNDS = Number(roundsArg ?? process.env.BENCH_ROUNDS ?? 3);
if (!(ROUNDS >= 1)) throw new Error(`bench build: --rounds "${roundsArg}" must be a positive number`);
const CACHE = join(tmpdir(), 'kiln-bench-cache');
const ROOTFS_TAR = join(CACHE, 'bookworm-minbase-gcc.tar');
const CTX_FILES = 20_000;
const CTX_BYTES = 300 * 2 ** 20;
const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);
const sh = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${(r.stderr ?? '').trim().slice(-800)}`);
  return r.stdout;
};

/** Waits (BENCH_QUIET_WAIT s, default 600) for the 1-minute load to drop under half the cores; returns the load then. */
async function waitQuiet() {
  const limit = cpus().length / 2;
  const tries = Number(process.env.BENCH_QUIET_WAIT ?? 600) / 10;
  for (let i = 0; i < tries && loadavg()[0] > limit; i++) {
    process.stderr.write(`bench build: load ${loadavg()[0].toFixed(2)} > ${limit}, waiting for a quiet machine\n`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
  return loadavg()[0];
}

/** Deterministic pseudo-random bytes: AES-256-CTR of zeros under a key derived from `seed`. */
function prng(seed) {
  const key = Buffer.alloc(32);
  key.write(String(seed));
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

/** The debootstrap minbase bookworm rootfs with gcc and libc6-dev, as a tarball cached across runs. */
export function gccRootfs(dir) {
  if (!existsSync(ROOTFS_TAR)) {
    requireBinary('debootstrap', 'debootstrap');
    mkdirSync(CACHE, { recursive: true });
    const tmp = mkdtempSync(join(CACHE, 'debootstrap-'));
    process.stderr.write(`bench build: debootstrap minbase bookworm + gcc into ${tmp} (cached as ${ROOTFS_TAR})\n`);
    try {
      sh('debootstrap', ['--variant=minbase', '--include=gcc,libc6-dev', 'bookworm', tmp, 'http://deb.debian.org/debian'], { stdio: ['ignore', 'ignore', 'pipe'] });
      sh('tar', ['-C', tmp, '--numeric-owner', '-cf', `${ROOTFS_TAR}.tmp`, '.']);
      sh('mv', [`${ROOTFS_TAR}.tmp`, ROOTFS_TAR]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  mkdirSync(dir);
  // debootstrap's /dev holds device nodes, which image layers must not carry (Kiln refuses them, as it should).
  sh('tar', ['-C', dir, '--numeric-owner', '--exclude=./dev/*', '-xpf', ROOTFS_TAR]);
  return dir;
}

/** A busybox-static rootfs: the binary, one symlink per applet, /etc/passwd and /tmp. */
export function busyboxRootfs(dir) {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of sh('/bin/busybox', ['--list']).split('\n')) if (/^[\w.[-]+$/.test(a) && a !== 'busybox') symlinkSync('busybox', join(dir, 'bin', a));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
  mkdirSync(join(dir, 'tmp'), { mode: 0o1777 });
  mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
  return dir;
}

/** Makes an image of `rootfs` with Kiln's own imageFromDirectory and pushes it with `kiln copy` to `ref`. */
export async function pushBase(rootfs, layout, ref) {
  const { imageFromDirectory } = await dist('builder/directory-image.js');
  const { openOciLayout } = await dist('oci/layout/layout-target.js');
  const target = await openOciLayout({ dir: layout, mode: 'write' });
  await imageFromDirectory({ directory: rootfs, target, tag: '1', config: { Cmd: ['/bin/sh'] } });
  await target.close();
  sh(process.execPath, [KILN, 'copy', '-q', `oci:${layout}:1`, ref]);
}

const HELLO = (msg) => `#include <stdio.h>\nint main(void) { printf("%s\\n", "${msg}"); return 0; }\n`;

/** Workload (a): multi-stage gcc → busybox. */
export function gccWorkload(dir, host) {
  mkdirSync(dir);
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${host}/bench/gcc:1\nCOPY hello.c /src/hello.c\nRUN gcc -O2 -static -o /hello /src/hello.c\n\nFROM ${host}/bench/busybox:1\nCOPY --from=0 /hello /usr/local/bin/hello\nCMD ["/usr/local/bin/hello"]\n`);
  const file = join(dir, 'hello.c');
  const original = HELLO('hello from the bench');
  writeFileSync(file, original);
  return { name: 'a', dir, change: (tag) => writeFileSync(file, HELLO(`hello, ${tag}`)), restore: () => writeFileSync(file, original) };
}

/** Workload (b): FROM busybox, COPY . /ctx of 20,000 files (300 MiB, mixed sizes, nested), RUN over them. */
export function contextWorkload(dir, host) {
  mkdirSync(dir);
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${host}/bench/busybox:1\nCOPY . /ctx\nRUN ls /ctx | wc -l\n`);
  const bytes = prng('kiln-bench-context');
  // Log-uniform sizes from 64 B to 1 MiB, scaled so they sum to CTX_BYTES: many small files, a few large ones.
  const raw = Array.from({ length: CTX_FILES }, () => 64 * 2 ** ((bytes(2).readUInt16LE(0) / 65535) * 14));
  const scale = CTX_BYTES / raw.reduce((s, x) => s + x, 0);
  const sizes = raw.map((x) => Math.max(1, Math.round(x * scale)));
  const largest = sizes.indexOf(Math.max(...sizes));
  sizes[largest] += CTX_BYTES - sizes.reduce((s, x) => s + x, 0);
  // 20 × 10 directories of binaries, each with 5 subdirectories of text: 1,220 directories, 3 levels deep.
  const pathOf = (i) => join(`d${i % 20}`, `s${Math.floor(i / 20) % 10}`, i % 3 ? `f${i}.bin` : join(`t${Math.floor(i / 200) % 5}`, `f${i}.txt`));
  for (let i = 0; i < CTX_FILES; i++) {
    const path = join(dir, pathOf(i));
    mkdirSync(join(path, '..'), { recursive: true });
    // A third of the files are hex text (compressible, like source); the rest random (like binaries, archives).
    writeFileSync(path, i % 3 === 0 ? bytes(Math.ceil(sizes[i] / 2)).toString('hex').slice(0, sizes[i]) : bytes(sizes[i]));
  }
  const file = join(dir, pathOf(4242));
  const original = readFileSync(file);
  const sorted = [...sizes].sort((x, y) => x - y);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const spread = `${sorted[0]} B to ${kib(sorted.at(-1))}, median ${kib(median(sorted))}`;
  return { name: 'b', dir, spread, change: (tag) => writeFileSync(file, Buffer.concat([Buffer.from(tag), original.subarray(tag.length)])), restore: () => writeFileSync(file, original) };
}

/** Runs a command under /usr/bin/time: wall seconds, CPU % and the largest process's max RSS (MiB). */
async function measure(cmd, args, env, scratch) {
  const out = join(scratch, 'time.out');
  const { seconds } = await timed('/usr/bin/time', ['-o', out, '-f', '%P %M', cmd, ...args], env);
  const [cpu, rssKb] = readFileSync(out, 'utf8').trim().split('\n').pop().split(' ');
  return { seconds, cpu: Number(cpu.replace('%', '')), rssMiB: Number(rssKb) / 1024 };
}

/** umounts whatever buildah left mounted under `dir`, deepest first, then removes it. */
function wipe(dir) {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(`${dir}/`) || m === dir);
  for (const m of mounts.sort((x, y) => y.length - x.length)) spawnSync('umount', ['-l', m.replace(/\\040/g, ' ')]);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Restarts the registry on its port and storage if something on this shared machine killed it (it happened: a
 * broad kill by another session); returns whether it had to. Revived processes are stopped by `registry.stop`.
 */
async function revive(registry) {
  const up = async () => (await fetch(`http://${registry.host}/v2/`).catch(() => undefined))?.status === 200;
  if (await up()) return false;
  const child = spawn('docker-registry', ['serve', join(registry.dir, 'config.yml')], { stdio: 'ignore' });
  const stop = registry.stop;
  registry.stop = async () => {
    child.kill('SIGTERM');
    await stop();
  };
  for (let i = 0; i < 100 && !(await up()); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await up())) throw new Error(`docker-registry on ${registry.host} died and did not restart`);
  return true;
}

function tools(scratch) {
  const buildah = (driver) => {
    const root = join(scratch, `buildah-${driver}`);
    const base = ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', driver];
    return {
      build: (w) => ['buildah', [...base, 'bud', '--isolation', 'chroot', '--layers', '--tls-verify=false', '-q', '-t', `bench-${w.name}`, w.dir], {}],
      reset: () => {
        if (existsSync(root)) spawnSync('buildah', [...base, 'rmi', '-a', '-f'], { stdio: 'ignore' });
        wipe(root);
      },
    };
  };
  const data = join(scratch, 'kiln-data');
  return {
    kiln: { build: (w) => [process.execPath, [KILN, 'build', '-q', '-t', `bench/${w.name}:1`, w.dir], { KILN_DATA_DIR: data }], reset: () => rmSync(data, { recursive: true, force: true }), data },
    'buildah-overlay': buildah('overlay'),
    'buildah-vfs': buildah('vfs'),
  };
}

const PHASES = ['cold', 'noop', 'change'];

/** One tool on one workload: cold build from empty storage, no-op rebuild, rebuild after one file changed. */
async function series(tool, t, w, round, scratch) {
  t.reset();
  clearSkopeoCache();
  const r = {};
  try {
    r.cold = await measure(...t.build(w), scratch);
    r.noop = await measure(...t.build(w), scratch);
    w.change(`${tool} round ${round}`);
    r.change = await measure(...t.build(w), scratch);
  } finally {
    w.restore();
    t.reset();
  }
  return r;
}

/** Self time per function of a .cpuprofile, top `n`, as "ms  function (file:line)". */
export function topSelf(profileDir, n = 8) {
  const file = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  const prof = JSON.parse(readFileSync(join(profileDir, file), 'utf8'));
  const byId = new Map(prof.nodes.map((node) => [node.id, node]));
  const self = new Map();
  prof.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const key = `${functionName || '(anonymous)'} (${url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, 'node:') || 'native'}${url ? `:${lineNumber + 1}` : ''})`;
    self.set(key, (self.get(key) ?? 0) + (prof.timeDeltas[i] ?? 0) / 1000);
  });
  const total = [...self.values()].reduce((s, x) => s + x, 0);
  return { total, top: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n) };
}

/** A cold then a no-op kiln build of `w` under node --cpu-prof (not timed); the no-op profile's top functions. */
async function profileNoop(t, w, scratch) {
  const dir = join(scratch, 'prof');
  t.reset();
  const [cmd, args, env] = t.build(w);
  await timed(cmd, args, env);
  await timed(cmd, ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...args], env);
  t.reset();
  return topSelf(dir);
}

export async function run() {
  for (const [bin, pkg] of [['buildah', 'buildah'], ['docker-registry', 'docker-registry'], ['/usr/bin/time', 'time'], ['/bin/busybox', 'busybox-static'], ['tar', 'tar']]) requireBinary(bin, pkg);
  const scratch = mkdtempSync(join(tmpdir(), 'kiln-bench-build-'));
  const registry = await startDistribution();
  const all = tools(scratch);
  const results = {}; // workload → tool → phase → [{seconds,cpu,rssMiB}] | { error }
  let loadBefore = 0;
  let loadMax = 0;
  let prof;
  let spread = '';
  let revived = 0;
  // Ctrl-C: still unmount buildah's storage and remove the registry and scratch dirs.
  const onSignal = () => {
    for (const t of Object.values(all)) t.reset();
    void registry.stop().finally(() => {
      rmSync(registry.dir, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  try {
    process.stderr.write(`bench build: base images → ${registry.host}; context in ${scratch}\n`);
    await pushBase(busyboxRootfs(join(scratch, 'busybox-rootfs')), join(scratch, 'busybox-layout'), `${registry.host}/bench/busybox:1`);
    await pushBase(gccRootfs(join(scratch, 'gcc-rootfs')), join(scratch, 'gcc-layout'), `${registry.host}/bench/gcc:1`);
    for (const d of ['busybox-rootfs', 'gcc-rootfs', 'busybox-layout', 'gcc-layout']) rmSync(join(scratch, d), { recursive: true, force: true });
    const workloads = [gccWorkload(join(scratch, 'a'), registry.host), contextWorkload(join(scratch, 'b'), registry.host)];
    spread = workloads[1].spread;
    loadBefore = await waitQuiet();
    for (const w of workloads) {
      results[w.name] = {};
      for (let round = 1; round <= ROUNDS; round++) {
        const names = Object.keys(all);
        const order = round % 2 ? names : [...names].reverse();
        for (const tool of order) {
          const slot = (results[w.name][tool] ??= { cold: [], noop: [], change: [] });
          if (slot.error) continue;
          try {
            revived += Number(await revive(registry));
            let r;
            try {
              r = await series(tool, all[tool], w, round, scratch);
            } catch (err) {
              // Killed under our feet: revive it and run the series again; a real failure fails again.
              if (!(await revive(registry))) throw err;
              revived++;
              r = await series(tool, all[tool], w, round, scratch);
            }
            for (const p of PHASES) slot[p].push(r[p]);
            process.stderr.write(`(${w.name}) round ${round} ${tool}: ${PHASES.map((p) => `${p} ${r[p].seconds.toFixed(2)} s (${r[p].cpu}% CPU)`).join(', ')}\n`);
          } catch (err) {
            // buildah's overlay driver can fail on some kernels/filesystems; keep the error for RESULTS.md and go on.
            slot.error = String(err.message ?? err).split('\n').slice(-3).join(' ').slice(-400);
            process.stderr.write(`(${w.name}) round ${round} ${tool}: FAILED ${slot.error}\n`);
          }
          loadMax = Math.max(loadMax, loadavg()[0]);
        }
      }
    }
    revived += Number(await revive(registry));
    prof = await profileNoop(all.kiln, workloads[1], scratch);
  } finally {
    await registry.stop();
    rmSync(registry.dir, { recursive: true, force: true });
    for (const t of Object.values(all)) t.reset();
    rmSync(scratch, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
  }
  const body = report(results, { loadBefore, loadMax, prof, spread, revived });
  writeSection('build', body);
  process.stdout.write(`${body}\n`);
}

const med = (xs, f) => median(xs.map(f));
const fmt = (s) => (s === undefined ? 'n/a' : `${s.toFixed(2)} s`);
const GOALS = { cold: 0.8, noop: 0.3, change: undefined };
const LABELS = { cold: 'cold build (empty storage)', noop: 'no-op rebuild', change: 'one file changed' };

function table(name, byTool) {
  const k = byTool.kiln;
  const t = (tool, p) => (byTool[tool]?.error || !byTool[tool]?.[p]?.length ? undefined : med(byTool[tool][p], (x) => x.seconds));
  const ratio = (tool, p) => (t(tool, p) && t('kiln', p) ? t('kiln', p) / t(tool, p) : undefined);
  const verdict = (p) => {
    const goal = GOALS[p];
    const rs = ['buildah-overlay', 'buildah-vfs'].map((tool) => ratio(tool, p)).filter((x) => x !== undefined);
    if (goal === undefined) return '—';
    let ok = rs.length > 0 && rs.every((x) => x <= goal);
    if (p === 'noop' && name === 'b') ok &&= t('kiln', p) < 2;
    return `≤ ${goal}×${p === 'noop' && name === 'b' ? ' and < 2 s' : ''}: ${ok ? 'met' : '**missed**'}`;
  };
  const rows = PHASES.map((p) => `| ${LABELS[p]} | ${fmt(t('kiln', p))} | ${fmt(t('buildah-overlay', p))} | ${fmt(t('buildah-vfs', p))} | ${ratio('buildah-overlay', p)?.toFixed(2) ?? 'n/a'} | ${ratio('buildah-vfs', p)?.toFixed(2) ?? 'n/a'} | ${verdict(p)} |`);
  const cpu = (tool, p) => (byTool[tool]?.error ? 'n/a' : `${med(byTool[tool][p], (x) => x.cpu).toFixed(0)}%`);
  const errors = ['buildah-overlay', 'buildah-vfs', 'kiln'].filter((tool) => byTool[tool]?.error).map((tool) => `\n${tool} failed: \`${byTool[tool].error}\``);
  return `| ${name === 'a' ? '(a) multi-stage gcc' : '(b) COPY 20,000 files, 300 MiB'} | kiln | buildah overlay | buildah vfs | kiln ÷ overlay | kiln ÷ vfs | goal |
|---|---|---|---|---|---|---|
${rows.join('\n')}

CPU (median, /usr/bin/time %P) cold: kiln ${cpu('kiln', 'cold')}, buildah overlay ${cpu('buildah-overlay', 'cold')}, vfs ${cpu('buildah-vfs', 'cold')}; no-op: kiln ${cpu('kiln', 'noop')}, overlay ${cpu('buildah-overlay', 'noop')}, vfs ${cpu('buildah-vfs', 'noop')}.
kiln peak RSS (largest process, median of cold / no-op / changed): ${k?.error ? 'n/a' : PHASES.map((p) => `${med(k[p], (x) => x.rssMiB).toFixed(0)} MiB`).join(' / ')}.${errors.join('')}`;
}

function report(results, { loadBefore, loadMax, prof, spread, revived }) {
  const busy = loadMax > cpus().length / 2 ? `**busy**: 1-min load reached ${loadMax.toFixed(2)} during the run (other engineers' tests); figures are noisier than usual` : `quiet (1-min load ${loadBefore.toFixed(2)} at start, at most ${loadMax.toFixed(2)})`;
  const v = (cmd) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  const profLines = prof ? prof.top.map(([fn, ms]) => `  - ${ms.toFixed(0)} ms — \`${fn}\``).join('\n') : '';
  return `## build — \`kiln build\` vs buildah (${new Date().toISOString().slice(0, 10)})

Both tools build the same Dockerfiles from the same loopback CNCF registry (base images made by Kiln's
imageFromDirectory and pushed with \`kiln copy\`: a debootstrap minbase bookworm rootfs with gcc and libc6-dev,
and busybox-static). (a) \`FROM …/bench/gcc:1\`, COPY hello.c, \`RUN gcc -O2 -static\`, then \`FROM …/bench/busybox:1\`
+ \`COPY --from=0\`; (b) \`FROM …/bench/busybox:1\`, \`COPY . /ctx\` of ${CTX_FILES} files / ${CTX_BYTES / 2 ** 20} MiB (deterministic
pseudo-random, ⅓ hex text, log-uniform sizes ${spread}, 1,220 dirs 3 levels deep), \`RUN ls /ctx | wc -l\`.
kiln: \`kiln build -q -t bench/x:1 CTX\` (image kept in the local store; fresh KILN_DATA_DIR for cold, kept for the
rebuilds). buildah: \`buildah --root R --runroot RR --storage-driver overlay|vfs bud --isolation chroot --layers
--tls-verify=false -t x CTX\` (fresh R for cold). Cold includes pulling the base images. "One file changed" edits
hello.c / one context file. ${ROUNDS} rounds, order alternated, medians; wall time of the whole CLI run.
Kiln at ${v('git rev-parse --short HEAD')}${v('git status --porcelain builder cli oci') ? ' plus uncommitted changes' : ''}. Machine: ${machineLine()}; ${v('buildah --version')}; kernel ${v('uname -r')}. Machine was ${busy}.${revived ? ` The registry was killed by something else on the machine ${revived} time(s) and restarted; the affected series were rerun.` : ''}

${table('a', results.a ?? {})}

${table('b', results.b ?? {})}

Profile of a kiln no-op rebuild of (b) (\`node --cpu-prof\`, ${prof ? prof.total.toFixed(0) : '?'} ms sampled), top self time:
${profLines}

Reproduce: \`npm run bench -- build --rounds ${ROUNDS}\` (the debootstrap rootfs is cached in ${CACHE}).`;
}
