import { execFileSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where Debian's busybox-static puts its statically linked binary. */
export const BUSYBOX = '/bin/busybox';

/** Users of the test rootfs, in /etc/passwd: root, app (1000, also in group staff) and nobody. */
export const BUSYBOX_PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

/** Groups of the test rootfs, in /etc/group. */
export const BUSYBOX_GROUP = ['root:x:0:', 'staff:x:50:app', 'app:x:1000:', 'nogroup:x:65534:', ''].join('\n');

/**
 * Fills `dir` with a tiny Linux root file system: /bin/busybox (static) with a symlink per applet (sh, echo, id,
 * ls, ip …), /etc/passwd and /etc/group (see above), /tmp (1777), /root (0700) and /home/app (owned by 1000).
 * No /proc, /dev, /etc/hosts or /etc/resolv.conf: a RUN must cope without them. Returns `dir`.
 */
export async function makeBusyboxRootfs(dir: string): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[\w.[-]+$/.test(a));
  for (const applet of applets) {
    if (applet !== 'busybox') await symlink('busybox', join(dir, 'bin', applet));
  }
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc/passwd'), BUSYBOX_PASSWD);
  await writeFile(join(dir, 'etc/group'), BUSYBOX_GROUP);
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
  await mkdir(join(dir, 'root'), { mode: 0o700 });
  await mkdir(join(dir, 'home/app'), { recursive: true });
  if (process.getuid?.() === 0) await chown(join(dir, 'home/app'), 1000, 1000);
  return dir;
}
