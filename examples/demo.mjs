#!/usr/bin/env node
// `npm run demo`: the main job end to end on embedded defaults. Today: make a small base image from Debian's
// busybox-static, push it to `kiln serve` (started here with its data in a temp dir), copy it back and inspect it.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const kiln = join(root, 'bin/kiln.js');
const { imageFromDirectory } = await import(join(root, 'dist/builder/directory-image.js'));
const { openTarget } = await import(join(root, 'dist/oci/transports.js'));
const { hostPlatform } = await import(join(root, 'dist/oci/platform.js'));

const BUSYBOX = '/bin/busybox';
if (!existsSync(BUSYBOX) || spawnSync('ldd', [BUSYBOX], { encoding: 'utf8' }).stdout.includes('=>')) {
  process.stderr.write('demo: a static busybox is needed: apt-get install -y busybox-static\n');
  process.exit(1);
}

function step(text) {
  process.stderr.write(`\n\x1b[1m==> ${text}\x1b[0m\n`);
}

/** Starts `kiln serve` on a free port and resolves once it prints where it listens. */
function startKilnServe(data) {
  const child = spawn('node', [kiln, 'serve', '--addr', '127.0.0.1:0', '--data', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /listening on http:\/\/(\S+)/.exec(err);
      if (m) resolve({ host: m[1], stop: () => child.kill('SIGTERM') });
    });
    child.on('exit', (code) => reject(new Error(`kiln serve exited with ${code}: ${err.trim().slice(-300)}`)));
  });
}

function kilnRun(...args) {
  process.stderr.write(`$ kiln ${args.join(' ')}\n`);
  const res = spawnSync('node', [kiln, ...args], { stdio: 'inherit' });
  if (res.status !== 0) throw new Error(`kiln ${args[0]} failed with exit ${res.status}`);
}

const work = mkdtempSync(join(tmpdir(), 'kiln-demo-'));
const out = join(root, 'demo-out');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
let registry;
try {
  step('1. a base image from busybox-static, written as an OCI layout');
  const rootfs = join(work, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['etc', 'tmp', 'root']) mkdirSync(join(rootfs, d));
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'env', 'mkdir', 'rm', 'cp', 'mv', 'id', 'uname']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  const layoutSpec = `oci:${join(out, 'layout')}:1.0`;
  const target = await openTarget(layoutSpec, { mode: 'write' });
  const manifest = await imageFromDirectory({ directory: rootfs, target, tag: '1.0', platform: { ...hostPlatform(), os: 'linux' }, config: { Cmd: ['/bin/sh'] } });
  await target.close();
  process.stderr.write(`wrote ${layoutSpec} (${manifest.digest}) — reproducible: the same busybox gives the same digest\n`);

  step('2. kiln serve: a private OCI registry on loopback, data in a temp dir');
  process.stderr.write(`$ kiln serve --addr 127.0.0.1:0 --data ${join(work, 'registry')}\n`);
  registry = await startKilnServe(join(work, 'registry'));
  process.stderr.write(`registry at ${registry.host}\n`);

  step('3. copy the layout to the registry, and back into an oci-archive');
  kilnRun('copy', layoutSpec, `${registry.host}/demo/busybox:1.0`);
  kilnRun('copy', `${registry.host}/demo/busybox:1.0`, `oci-archive:${join(out, 'busybox.tar')}:1.0`);

  step('4. inspect and list');
  kilnRun('inspect', `${registry.host}/demo/busybox:1.0`);
  kilnRun('tags', `${registry.host}/demo/busybox`);
  kilnRun('inspect', '--raw', `oci-archive:${join(out, 'busybox.tar')}:1.0`);
  process.stderr.write('\n\ndemo: done. Outputs are in demo-out/.\n');
} finally {
  registry?.stop();
  rmSync(work, { recursive: true, force: true });
}
