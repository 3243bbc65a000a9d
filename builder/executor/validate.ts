import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, relative, resolve, isAbsolute } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import type { RunSpec } from './types.js';

/** IDs stay within 32-bit signed range, as runc requires. */
const MAX_ID = 2 ** 31 - 1;

/** RFC 1123 labels, at most 63 characters: what sethostname and /etc/hosts accept without surprises. */
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Overlay's option string separates with ',' and ':' and escapes with '\': such paths cannot be passed safely. */
const OVERLAY_UNSAFE = /[,:\\"\n]/;

/** Checks a RunSpec before anything is created; every problem is a KilnError('VALIDATION') naming the field. */
export async function validateSpec(spec: RunSpec, rootless: boolean): Promise<void> {
  if (spec.argv.length === 0 || spec.argv[0] === '') {
    throw new KilnError('VALIDATION', 'RUN has an empty command', { hint: 'give RUN a command' });
  }
  for (const [i, a] of spec.argv.entries()) {
    if (a.includes('\0')) throw invalid(`RUN argument ${i} contains a NUL byte`, 'remove the NUL byte');
  }
  for (const e of spec.env) {
    if (!/^[^=\0]+=/.test(e) || e.includes('\0')) {
      throw invalid(`RUN environment entry ${JSON.stringify(e)} is not NAME=VALUE`, 'write ENV NAME=VALUE');
    }
  }
  if (!spec.cwd.startsWith('/') || spec.cwd.includes('\0')) {
    throw invalid(`WORKDIR ${JSON.stringify(spec.cwd)} is not an absolute path`, 'write WORKDIR /absolute/path');
  }
  const { uid, gid, groups = [] } = spec.user;
  for (const id of [uid, gid, ...groups]) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
      throw invalid(`USER id ${id} is out of range 0-${MAX_ID}`, 'use ids between 0 and 2147483647');
    }
  }
  if (rootless && (uid !== 0 || gid !== 0 || groups.length > 0)) {
    throw new KilnError('USAGE', `USER ${uid}:${gid} needs a subordinate id range: rootless RUN maps only root`, {
      hint: 'run kiln build as root, or keep USER root for RUN steps (docs/rootless.md)',
    });
  }
  if (spec.hostname !== undefined && !HOSTNAME.test(spec.hostname)) {
    throw invalid(`hostname ${JSON.stringify(spec.hostname)} is not a valid host name`, 'use letters, digits, - and .');
  }
  if (!['none', 'default', 'host'].includes(spec.network)) {
    throw invalid(`RUN --network=${String(spec.network)} is not supported`, 'use none, default or host');
  }
  await validateDirs(spec);
}

/** An already-aborted signal rejects at once, with the same error an abort during the run gives. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new KilnError('BUILD_FAILED', 'RUN was aborted before it started', { cause: signal.reason });
  }
}

async function validateDirs(spec: RunSpec): Promise<void> {
  const rootfs = resolve(spec.rootfs);
  const upper = resolve(spec.upper);
  for (const [name, path] of [['rootfs', rootfs], ['upper', upper], ['upper\'s parent', dirname(upper)]] as const) {
    if (OVERLAY_UNSAFE.test(path)) {
      throw invalid(`RUN ${name} ${path} contains , : \\ or a quote, which overlayfs options cannot carry`, 'use a plain path');
    }
  }
  const rootStat = await statDir(rootfs, 'rootfs');
  await statDir(upper, 'upper');
  if ((await readdir(upper)).length > 0) {
    throw invalid(`RUN upper dir ${upper} is not empty`, 'give each RUN a fresh, empty upper dir');
  }
  if (inside(upper, rootfs) || inside(rootfs, upper)) {
    throw invalid(`RUN upper dir ${upper} and rootfs ${rootfs} overlap`, 'keep the upper dir outside the rootfs');
  }
  if (!rootStat.isDirectory()) throw invalid(`RUN rootfs ${rootfs} is not a directory`, 'pass the stage directory');
}

async function statDir(path: string, name: string): Promise<Stats> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    throw new KilnError('NOT_FOUND', `RUN ${name} ${path} does not exist`, { cause: err, hint: `create the ${name} directory first` });
  }
  if (!st.isDirectory()) throw invalid(`RUN ${name} ${path} is not a directory`, `pass a directory as ${name}`);
  return st;
}

function inside(path: string, dir: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function invalid(message: string, hint: string): KilnError {
  return new KilnError('VALIDATION', message, { hint });
}
