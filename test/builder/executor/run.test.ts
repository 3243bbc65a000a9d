import { lstat, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listTree, makeSandbox, mountsUnder, processesWith, type Sandbox } from './harness.js';

const asRoot = process.getuid?.() === 0;

describe.runIf(asRoot)('runInNamespaces: the overlay and the process', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await makeSandbox();
  });
  afterAll(async () => {
    expect(await mountsUnder(box.base)).toEqual([]);
    await box.dispose();
  });

  it('writes a new file to the upper dir only', async () => {
    const r = await box.run(['/bin/sh', '-c', 'echo hello > /greeting']);
    expect(r.exitCode).toBe(0);
    expect(await listTree(r.upper)).toEqual(['greeting']);
    expect(await readFile(join(r.upper, 'greeting'), 'utf8')).toBe('hello\n');
    await expect(lstat(join(box.rootfs, 'greeting'))).rejects.toThrow(/ENOENT/);
    // The run's private dir beside the upper (workdir, scaffold, hosts) is gone.
    expect((await listTree(box.base, '')).filter((p) => p.includes('-run-'))).toEqual([]);
  });

  it('records a deleted lower file as a 0/0 character device and a replaced dir as opaque', async () => {
    const r = await box.run(['/bin/sh', '-c', 'rm /etc/group && rm -rf /home && mkdir /home']);
    expect(r.exitCode).toBe(0);
    const wh = await lstat(join(r.upper, 'etc/group'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(await readFile(join(box.rootfs, 'etc/group'), 'utf8')).toContain('staff');
    // The copied-up parent keeps the rootfs' mode (the scaffold lower mirrors it).
    expect((await stat(join(r.upper, 'etc'))).mode & 0o7777).toBe((await stat(join(box.rootfs, 'etc'))).mode & 0o7777);
    const { execFileSync } = await import('node:child_process');
    const xattr = execFileSync('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', '--only-values', join(r.upper, 'home')]);
    expect(xattr.toString()).toBe('y');
  });

  it('runs with exactly the given environment, cwd and user', async () => {
    const env = await box.run(['env'], { env: ['PATH=/bin', 'GREETING=hello world', 'EMPTY='] });
    expect(env.output).toBe('PATH=/bin\nGREETING=hello world\nEMPTY=\n');

    const r = await box.run(['/bin/sh', '-c', 'id -u; id -g; id -G; pwd; touch /root/x 2>&1 || echo denied'], {
      cwd: '/home/app/src',
      user: { uid: 1000, gid: 1000, groups: [50] },
    });
    expect(r.exitCode).toBe(0);
    const lines = r.output.trim().split('\n');
    expect(lines.slice(0, 4)).toEqual(['1000', '1000', '1000 50', '/home/app/src']);
    expect(lines[lines.length - 1]).toBe('denied');
    // A missing cwd is created, in the upper dir, as Docker does.
    expect(await listTree(r.upper)).toEqual(['home', 'home/app', 'home/app/src']);
  });

  it('runs the command as pid 1 of its own pid namespace with only its own processes', async () => {
    const r = await box.run(['/bin/sh', '-c', 'echo $$; ps -o pid,comm; true']);
    const lines = r.output.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines[0]).toBe('1');
    expect(lines.slice(2)).toEqual(['1 sh', expect.stringMatching(/^\d+ ps$/)]);
  });

  it('sets the hostname and writes it to /etc/hosts without changing the layer', async () => {
    const def = await box.run(['hostname']);
    expect(def.output).toBe('kiln\n');
    const r = await box.run(['/bin/sh', '-c', 'hostname; cat /etc/hosts; echo 10.0.0.1 extra >> /etc/hosts; cat /etc/resolv.conf'], {
      hostname: 'builder-1',
    });
    expect(r.exitCode).toBe(0);
    expect(r.output).toMatch(/^builder-1\n127\.0\.0\.1\tlocalhost\n/);
    expect(r.output).toContain('\tbuilder-1\n');
    expect(r.output).toContain(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
    expect(await listTree(r.upper)).toEqual([]);
    expect(await listTree(box.rootfs, 'etc')).toEqual(['etc/group', 'etc/passwd']);
  });

  it('gives --network=none only a loopback interface, up', async () => {
    const none = await box.run(['/bin/sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; ip -o link show lo'], {
      network: 'none',
    });
    const lines = none.output.trim().split('\n');
    expect(lines[0]).toBe('lo');
    expect(lines[1]).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(lines).toHaveLength(2);
    const host = await box.run(['/bin/sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'], { network: 'host' });
    const hostIfaces = (await readFile('/proc/net/dev', 'utf8')).split('\n').slice(2).filter(Boolean).map((l) => l.split(':')[0]?.trim());
    expect(host.output.trim().split('\n').sort()).toEqual(hostIfaces.sort());
  });

  it('reports a non-zero exit code with the last lines of stdout and stderr', async () => {
    const r = await box.run(['/bin/sh', '-c', 'for i in $(seq 1 30); do echo line $i; done; echo oops >&2; exit 3']);
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeUndefined();
    expect(r.lastLines).toHaveLength(20);
    expect(r.lastLines[0]).toBe('line 12');
    expect(r.lastLines[19]).toBe('oops');
  });

  it('answers 127 with a clear last line for a command missing in the rootfs', async () => {
    const r = await box.run(['apt-get', 'install', 'x']);
    expect(r.exitCode).toBe(127);
    expect(r.lastLines[r.lastLines.length - 1]).toBe('kiln: apt-get: executable file not found in the rootfs (or its PATH)');
    expect(await listTree(r.upper)).toEqual([]);
  });

  it('reports the signal that ended the command', async () => {
    const marker = `sleep ${4000 + Math.floor(Math.random() * 1000)}`;
    const running = box.run(['/bin/sh', '-c', `exec ${marker}`]);
    // Wait for the command itself: its argv starts with the marker (the wrappers' argv only contain it later on).
    let target: number | undefined;
    for (let i = 0; i < 200 && target === undefined; i++) {
      await new Promise((res) => setTimeout(res, 50));
      for (const pid of await processesWith(marker)) {
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
        if (argv.slice(0, 2).join(' ') === marker) target = pid;
      }
    }
    expect(target).toBeDefined();
    // pid 1 of a namespace only takes SIGKILL (or a signal it handles), even from the host.
    process.kill(target as number, 'SIGKILL');
    const r = await running;
    expect(r.signal).toBe('SIGKILL');
    expect(r.exitCode).toBe(137);
  });
});
