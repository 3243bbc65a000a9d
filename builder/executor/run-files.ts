import { chmod, chown, lstat, readFile } from 'node:fs/promises';

/** /etc/hosts of a RUN: localhost and the RUN's hostname on the loopback, as Docker writes it. */
export function hostsFile(hostname: string): string {
  return [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
    `127.0.1.1\t${hostname}`,
    '',
  ].join('\n');
}

/** The host's resolver configuration (the RUN shares its network by default); empty when the host has none. */
export async function hostResolvConf(): Promise<string> {
  try {
    return await readFile('/etc/resolv.conf', 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/**
 * Gives the upper dir the rootfs root's mode and owner: overlay shows the upper's root directory as '/', so a
 * 0700 temp dir would lock every non-root USER out of the whole tree.
 */
export async function matchRoot(rootfs: string, upper: string, rootless: boolean): Promise<void> {
  const st = await lstat(rootfs);
  await chmod(upper, st.mode & 0o7777);
  // Rootless, the ids are our own (or unmapped): chown to them is neither needed nor allowed.
  if (!rootless) await chown(upper, st.uid, st.gid);
}
