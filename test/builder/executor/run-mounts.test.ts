import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../../oci/errors.js';
import { listTree, makeSandbox, mountsUnder, type Sandbox } from './harness.js';

const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('runInNamespaces: RUN --mount', () => {
  let box: Sandbox;
  let host: string;
  beforeAll(async () => {
    box = await makeSandbox();
    host = join(box.base, 'host');
    await mkdir(host);
  });
  afterAll(async () => {
    expect(await mountsUnder(box.base)).toEqual([]);
    await box.dispose();
  });

  it('shows a secret read-only at its target, owned as asked, and never in the upper dir', async () => {
    const secret = join(host, 'token');
    await writeFile(secret, 'hunter2', { mode: 0o600 });
    const r = await box.run(
      ['/bin/sh', '-c', 'cat /run/secrets/token; echo; stat -c "%a %u %g" /run/secrets/token; echo x > /run/secrets/token || echo refused'],
      { mounts: [{ type: 'secret', source: secret, target: '/run/secrets/token' }] },
    );
    expect(r.output.split('\n').slice(0, 2)).toEqual(['hunter2', '400 0 0']);
    expect(r.output).toContain('refused');
    expect(await listTree(r.upper)).toEqual([]);
    expect(await readFile(secret, 'utf8')).toBe('hunter2');

    const owned = await box.run(['stat', '-c', '%a %u %g', '/run/secrets/token'], {
      mounts: [{ type: 'secret', source: secret, target: '/run/secrets/token', mode: 0o440, uid: 1000, gid: 50 }],
    });
    expect(owned.output).toBe('440 1000 50\n');
  });

  it('keeps a cache mount between runs, outside the layer', async () => {
    const cache = join(host, 'cache');
    await mkdir(cache);
    const mounts = [{ type: 'cache' as const, source: cache, target: '/root/.cache/pkg' }];
    const first = await box.run(['/bin/sh', '-c', 'echo run >> /root/.cache/pkg/log'], { mounts });
    const second = await box.run(['/bin/sh', '-c', 'echo run >> /root/.cache/pkg/log; cat /root/.cache/pkg/log'], { mounts });
    expect(second.output).toBe('run\nrun\n');
    expect(await readFile(join(cache, 'log'), 'utf8')).toBe('run\nrun\n');
    expect(await listTree(first.upper)).toEqual([]);
    expect(await listTree(second.upper)).toEqual([]);
  });

  it('binds read-only when asked, read-write otherwise, directories and files alike', async () => {
    const src = join(host, 'ctx');
    await mkdir(src);
    await writeFile(join(src, 'data'), 'from the context\n');
    const ro = await box.run(['/bin/sh', '-c', 'cat /src/data; touch /src/new 2>&1; echo status $?'], {
      mounts: [{ type: 'bind', source: src, target: '/src', readonly: true }],
    });
    expect(ro.output).toMatch(/^from the context\n.*Read-only file system\nstatus 1\n$/);
    expect(await listTree(src)).toEqual(['data']);
    expect(await listTree(ro.upper)).toEqual([]);

    const rw = await box.run(['/bin/sh', '-c', 'echo added > /src/new; cat /one'], {
      mounts: [
        { type: 'bind', source: src, target: '/src', readonly: false },
        { type: 'bind', source: join(src, 'data'), target: '/one', readonly: true },
      ],
    });
    expect(rw.output).toBe('from the context\n');
    expect(await readFile(join(src, 'new'), 'utf8')).toBe('added\n');
    expect(await listTree(rw.upper)).toEqual([]);
  });

  it('mounts a tmpfs whose content vanishes, with nested mounts inside it', async () => {
    const secret = join(host, 'nested');
    await writeFile(secret, 's3');
    const r = await box.run(['/bin/sh', '-c', 'echo scratch > /scratch/file; cat /scratch/deep/secret; echo; stat -c %a /scratch'], {
      mounts: [
        { type: 'secret', source: secret, target: '/scratch/deep/secret' },
        { type: 'tmpfs', target: '/scratch', size: 1 << 20 },
      ],
    });
    expect(r.output).toBe('s3\n1777\n');
    expect(await listTree(r.upper)).toEqual([]);
  });

  it('follows symlinks of the rootfs to place a target, without leaving the rootfs', async () => {
    const rootfs = join(box.base, 'linked');
    await mkdir(rootfs);
    // A copy of the busybox tree is not needed: bind the shared /bin read-only.
    await symlink('/run', join(rootfs, 'varrun'));
    await symlink('../../../../../tmp', join(rootfs, 'escape'));
    const secret = join(host, 'linked-secret');
    await writeFile(secret, 'via link');
    const upper = await box.upper();
    const { runInNamespaces } = await import('../../../builder/executor/index.js');
    const chunks: Buffer[] = [];
    const r = await runInNamespaces({
      rootfs,
      upper,
      argv: ['/bin/sh', '-c', 'cat /run/s; echo; ls /escape'],
      env: ['PATH=/bin'],
      cwd: '/',
      user: { uid: 0, gid: 0 },
      network: 'default',
      mounts: [
        { type: 'bind', source: join(box.rootfs, 'bin'), target: '/bin', readonly: true },
        { type: 'secret', source: secret, target: '/varrun/s' },
        { type: 'tmpfs', target: '/escape/t' },
      ],
      onOutput: (c) => chunks.push(c),
    });
    expect(r.exitCode).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe('via link\nt\n');
    expect(await listTree(upper)).toEqual([]);
  });

  it('refuses targets that overlap what RUN manages and missing sources, before running anything', async () => {
    const bad = [
      { type: 'tmpfs' as const, target: '/proc/x' },
      { type: 'tmpfs' as const, target: '/etc' },
      { type: 'tmpfs' as const, target: '/' },
      { type: 'tmpfs' as const, target: 'relative' },
    ];
    for (const m of bad) {
      const err: unknown = await box.run(['true'], { mounts: [m] }).catch((e: unknown) => e);
      expect(isKilnError(err, 'VALIDATION'), `${m.target}: ${String(err)}`).toBe(true);
    }
    const missing: unknown = await box
      .run(['true'], { mounts: [{ type: 'cache', source: join(host, 'nope'), target: '/c' }] })
      .catch((e: unknown) => e);
    expect(isKilnError(missing, 'NOT_FOUND')).toBe(true);
  });
});
