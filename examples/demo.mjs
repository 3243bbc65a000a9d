#!/usr/bin/env node
// `npm run demo`: the main job end to end on embedded defaults. Make a small base image from Debian's
// busybox-static, push it to `kiln serve` (started here with its data in a temp dir), copy it back, inspect it,
// build the multi-stage examples/hello/Dockerfile on it and push the result, rebuild it from the cache, analyze,
// sign the built image and verify it, then move its tag to another signed image and watch verification refuse it.
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

/** Environment the signing steps add (shown in the echoed command line), set by `withEnv`. */
let extraEnv = {};

/** Runs `kiln ARGS` as a user would, echoing the command; throws unless it exits with `expected`. */
function kilnExpect(expected, ...args) {
  const shown = Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join('');
  process.stderr.write(`$ ${shown}kiln ${args.join(' ')}\n`);
  const res = spawnSync('node', [kiln, ...args], { stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  if (expected !== 0 || res.status !== 0) process.stderr.write(`(exit ${res.status})\n`);
  if (res.status !== expected) throw new Error(`kiln ${args[0]} exited with ${res.status}, expected ${expected}`);
}

function kilnRun(...args) {
  kilnExpect(0, ...args);
}

/** Runs `fn` with `env` added to the kiln commands' environment. */
function withEnv(env, fn) {
  const saved = extraEnv;
  extraEnv = { ...saved, ...env };
  try {
    return fn();
  } finally {
    extraEnv = saved;
  }
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

  step('5. kiln build: the multi-stage examples/hello/Dockerfile on that base, analyzed, pushed to kiln serve, then run again');
  // The local store (images, build cache) lives in the demo's temp dir, not in ~/.local/share/kiln.
  withEnv({ KILN_DATA_DIR: join(work, 'store') }, () => {
    const hello = `${registry.host}/demo/hello:1.0`;
    const buildArgs = ['build', '--progress', 'plain', '--build-context', `busybox=oci-layout://${join(out, 'layout')}:1.0`, '-t', hello, '--push'];
    kilnRun(...buildArgs, '--analyze', join(root, 'examples/hello'));
    process.stderr.write('# the same build again: every step is CACHED and the digest is the same (reproducible layers)\n');
    kilnRun(...buildArgs, join(root, 'examples/hello'));
    kilnRun('images');
    kilnRun('inspect', hello);
  });

  const repo = `${registry.host}/demo/busybox`;
  step('6. analyze the pushed image: layer efficiency and wasted bytes, as dive reports them and corrected');
  kilnRun('analyze', `${repo}:1.0`);

  const hello = `${registry.host}/demo/hello:1.0`;
  const helloTarget = await openTarget(hello, { mode: 'read' });
  const built = (await helloTarget.resolve()).digest;
  await helloTarget.close();
  step('7. a key pair, then sign the image the demo built and pushed, and verify it (offline, with the public key)');
  const keys = join(work, 'keys');
  mkdirSync(keys);
  // KILN_PASSWORD encrypts the private key; KILN_TRUST_DIR keeps the verifier's tag-state versions out of $HOME.
  const signing = { KILN_PASSWORD: 'demo-passphrase', KILN_TRUST_DIR: join(work, 'trust') };
  withEnv(signing, () => {
    kilnRun('keygen', '--output-key-prefix', join(keys, 'cosign'));
    kilnRun('sign', '--key', join(keys, 'cosign.key'), hello);
    kilnRun('verify', '--key', join(keys, 'cosign.pub'), hello);
  });

  step('8. another signed image is put under the built image’s tag: verify refuses the move (exit 12, tag binding)');
  const helloRepo = `${registry.host}/demo/hello`;
  withEnv(signing, () => {
    process.stderr.write('# the busybox base, copied into the hello repository as hello:base and signed there: a genuine signature\n');
    kilnRun('copy', '-q', `${repo}:1.0`, `${helloRepo}:base`);
    kilnRun('sign', '--key', join(keys, 'cosign.key'), `${helloRepo}:base`);
    kilnRun('verify', '--key', join(keys, 'cosign.pub'), hello, `${helloRepo}:base`);
    process.stderr.write(`# now hello:1.0 is moved to the base image; the signed tag state still binds 1.0 to ${built}\n`);
    kilnRun('copy', '-q', `${helloRepo}:base`, hello);
    kilnExpect(12, 'verify', '--key', join(keys, 'cosign.pub'), hello);
    process.stderr.write('# the built image itself is still signed: verify it by digest\n');
    kilnRun('verify', '--key', join(keys, 'cosign.pub'), `${helloRepo}@${built}`);
  });
  process.stderr.write('\n\ndemo: done. Outputs are in demo-out/.\n');
} finally {
  registry?.stop();
  rmSync(work, { recursive: true, force: true });
}
