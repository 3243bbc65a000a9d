import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';

/** Absolute paths of the host programs a RUN needs; optional ones are undefined when missing. */
export interface HostTools {
  unshare: string;
  setpriv: string;
  mount: string;
  env: string;
  sh: string;
  /** Brings `lo` up in a new network namespace (iproute2); without it --network=none has lo down. */
  ip: string | undefined;
  /** Sets the UTS hostname; without it the script writes /proc/sys/kernel/hostname (fails rootless). */
  hostname: string | undefined;
}

/** The sbin directories are searched too: `ip` lives there and a user's PATH often lacks them. */
const SEARCH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

let cached: Promise<HostTools> | undefined;

/** Finds the host tools once per process; throws KilnError('USAGE') naming the package to install. */
export function findHostTools(): Promise<HostTools> {
  cached ??= locateAll();
  // A failed lookup is retried next time: the user may install util-linux meanwhile.
  cached.catch(() => (cached = undefined));
  return cached;
}

async function locateAll(): Promise<HostTools> {
  const utilLinux = 'install util-linux ≥ 2.38 (Debian/Ubuntu: apt-get install util-linux mount; Alpine: apk add util-linux)';
  const [unshare, setpriv, mount, env, sh, ip, hostname] = await Promise.all([
    required('unshare', utilLinux),
    required('setpriv', utilLinux),
    required('mount', utilLinux),
    required('env', 'install coreutils'),
    required('sh', 'install a POSIX shell at /bin/sh'),
    which('ip'),
    which('hostname'),
  ]);
  return { unshare, setpriv, mount, env, sh, ip, hostname };
}

async function required(name: string, hint: string): Promise<string> {
  const found = await which(name);
  if (found === undefined) {
    throw new KilnError('USAGE', `RUN needs the host program ${name}, which is not on PATH or in ${SEARCH.join(':')}`, {
      hint,
    });
  }
  return found;
}

async function which(name: string): Promise<string | undefined> {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => d.startsWith('/')), ...SEARCH];
  for (const dir of new Set(dirs)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory: keep looking.
    }
  }
  return undefined;
}
