import { spawn, execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../../oci/errors.js';
import { makeSandbox, mountsUnder, processesWith, type Sandbox } from './harness.js';

const asRoot = process.getuid?.() === 0;
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

async function gone(marker: string): Promise<number[]> {
  let pids = await processesWith(marker);
  for (let i = 0; i < 100 && pids.length > 0; i++) {
    await new Promise((res) => setTimeout(res, 50));
    pids = await processesWith(marker);
  }
  return pids;
}

function uniqueSleep(): string {
  return `sleep ${100 + Math.floor(Math.random() * 100000)}`;
}

describe.runIf(asRoot)('runInNamespaces: abort, failure and cleanup', () => {
  let box: Sandbox;
  /** The executor compiled to JS, for child node processes (killed -9, or running as another user). */
  let compiled: string;
  beforeAll(async () => {
    box = await makeSandbox();
    await chmod(box.base, 0o755);
    compiled = join(box.base, 'compiled');
    execFileSync(join(REPO, 'node_modules/.bin/tsc'), [
      '--ignoreConfig', '--outDir', compiled, '--rootDir', REPO, '--module', 'nodenext', '--moduleResolution', 'nodenext',
      '--target', 'es2022', '--skipLibCheck', '--types', 'node', join(REPO, 'builder/executor/index.ts'),
    ], { cwd: REPO });
    execFileSync('chmod', ['-R', 'a+rX', compiled]);
  });
  afterAll(async () => {
    await box.dispose();
  });

  it('kills the whole process tree on abort, rejects, and leaves no mount or run dir', async () => {
    const marker = uniqueSleep();
    const controller = new AbortController();
    const started = Date.now();
    const running = box.run(['/bin/sh', '-c', `${marker} & ${marker}; echo never`], {
      signal: controller.signal,
      onOutput: () => undefined,
    });
    for (let i = 0; i < 100 && (await processesWith(marker)).length < 3; i++) await new Promise((res) => setTimeout(res, 50));
    controller.abort();
    const err: unknown = await running.catch((e: unknown) => e);
    expect(isKilnError(err, 'BUILD_FAILED')).toBe(true);
    expect(String(err)).toMatch(/aborted/);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await gone(marker)).toEqual([]);
    expect(await mountsUnder(box.base)).toEqual([]);
    expect((await readdir(box.base)).filter((n) => n.includes('-run-'))).toEqual([]);
  });

  it('stops the RUN and rejects with the error of a throwing onOutput callback', async () => {
    const marker = uniqueSleep();
    const boom = new Error('progress sink closed');
    const err: unknown = await box
      .run(['/bin/sh', '-c', `echo first; ${marker}`], {
        onOutput: () => {
          throw boom;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(await gone(marker)).toEqual([]);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const err: unknown = await box.run(['true'], { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isKilnError(err, 'BUILD_FAILED')).toBe(true);
  });

  it('turns a failed mount into a KilnError and cleans up after it', async () => {
    const cache = join(box.base, 'empty-cache');
    await mkdir(cache);
    const secret = join(box.base, 'secret');
    await writeFile(secret, 'x');
    const err: unknown = await box
      .run(['true'], {
        mounts: [
          { type: 'cache', source: cache, target: '/c' },
          // Inside a cache the target must already exist: the runtime creates nothing in a host directory.
          { type: 'secret', source: secret, target: '/c/missing/s' },
        ],
      })
      .catch((e: unknown) => e);
    expect(isKilnError(err, 'BUILD_FAILED')).toBe(true);
    expect(String(err)).toMatch(/RUN setup failed: cannot bind secret/);
    expect(await readdir(cache)).toEqual([]);
    expect(await mountsUnder(box.base)).toEqual([]);
  });

  it('leaves nothing behind after success and failure', async () => {
    expect((await box.run(['true'])).exitCode).toBe(0);
    expect((await box.run(['false'])).exitCode).toBe(1);
    expect(await mountsUnder(box.base)).toEqual([]);
    expect((await readdir(box.base)).filter((n) => n.includes('-run-'))).toEqual([]);
  });

  it('takes the RUN down with it when node itself is killed -9', async () => {
    const marker = uniqueSleep();
    const upper = await box.upper();
    const script = join(box.base, 'child.mjs');
    await writeFile(script, [
      `import { runInNamespaces } from ${JSON.stringify(join(compiled, 'builder/executor/index.js'))};`,
      `const spec = ${JSON.stringify({
        rootfs: box.rootfs, upper, argv: ['/bin/sh', '-c', `echo started; ${marker}`], env: ['PATH=/bin'], cwd: '/',
        user: { uid: 0, gid: 0 }, network: 'none', mounts: [{ type: 'tmpfs', target: '/t' }],
      })};`,
      'await runInNamespaces({ ...spec, onOutput: (c) => process.stdout.write(c) });',
    ].join('\n'));
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('started') && res());
      child.on('exit', (code) => rej(new Error(`child exited early with ${code}`)));
    });
    expect((await processesWith(marker)).length).toBeGreaterThan(0);
    child.kill('SIGKILL');
    expect(await gone(marker)).toEqual([]);
    expect(await mountsUnder(box.base)).toEqual([]);
  }, 120_000);

  it.runIf(rootlessPossible())('runs rootless in a user namespace: root inside, whiteouts and a clean exit', async () => {
    const dir = join(box.base, 'rootless');
    await mkdir(dir);
    await chmod(dir, 0o777);
    const script = join(dir, 'child.mjs');
    await writeFile(script, [
      "import { cp, mkdir, symlink, writeFile } from 'node:fs/promises';",
      `import { runInNamespaces } from ${JSON.stringify(join(compiled, 'builder/executor/index.js'))};`,
      `const dir = ${JSON.stringify(dir)};`,
      "await mkdir(dir + '/rootfs/bin', { recursive: true });",
      "await cp('/bin/busybox', dir + '/rootfs/bin/busybox');",
      "for (const a of ['sh', 'id', 'rm', 'cat', 'hostname', 'chown']) await symlink('busybox', dir + '/rootfs/bin/' + a);",
      "await mkdir(dir + '/rootfs/etc');",
      "await writeFile(dir + '/rootfs/etc/old', 'x');",
      "await mkdir(dir + '/upper');",
      "const r = await runInNamespaces({ rootfs: dir + '/rootfs', upper: dir + '/upper', env: ['PATH=/bin'], cwd: '/',",
      "  argv: ['/bin/sh', '-c', 'id -u; hostname; rm /etc/old; echo new > /new; chown 1000 /new 2>/dev/null || echo no-chown'],",
      "  user: { uid: 0, gid: 0 }, network: 'none', mounts: [{ type: 'tmpfs', target: '/tmp' }],",
      "  onOutput: (c) => process.stdout.write(c) });",
      "process.stdout.write('exit ' + r.exitCode + '\\n');",
    ].join('\n'));
    const out = execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, script], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(out).toBe('0\nkiln\nno-chown\nexit 0\n');
    const wh = await lstat(join(dir, 'upper/etc/old'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(wh.uid).toBe(65534);
    expect(await readdir(dir)).toEqual(['child.mjs', 'rootfs', 'upper']);
  });
});

/** Whether nobody (65534) may create a user namespace with a mount namespace here. */
function rootlessPossible(): boolean {
  if (!asRoot) return false;
  try {
    execFileSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'unshare', '--user', '--map-root-user', '--mount', 'true']);
    return true;
  } catch {
    return false;
  }
}
