import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { findHostTools, type HostTools } from './host-tools.js';
import { planMounts, type RunDirs } from './mount-plan.js';
import { hostResolvConf, hostsFile, matchRoot } from './run-files.js';
import { OutputTail } from './output-tail.js';
import { RUN_SCRIPT } from './script.js';
import { DEFAULT_HOSTNAME, type RunResult, type RunSpec } from './types.js';
import { throwIfAborted, validateSpec } from './validate.js';

/** Docker's default capability set: what a RUN as root may do (no CAP_SYS_ADMIN, so no mounts of its own). */
const CAPABILITIES = [
  'chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service',
  'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap',
];

/** The script's own PATH for the host tools it calls (mount, cp, mkdir …); the command gets spec.env only. */
const SCRIPT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Setup failures exit with this code and explain themselves on the script's stderr. */
const SETUP_FAILED = 125;

/**
 * Runs `spec.argv` in new mount, pid, uts and ipc namespaces (and net for 'none'; user when not root), chrooted
 * into an overlay of `rootfs` whose upper dir receives exactly the command's change. Resolves with the exit code
 * (a failing command is a result); throws KilnError for a setup failure, a missing host tool or an abort.
 */
export async function runInNamespaces(spec: RunSpec): Promise<RunResult> {
  const rootless = process.getuid?.() !== 0;
  await validateSpec(spec, rootless);
  throwIfAborted(spec.signal);
  const tools = await findHostTools();
  const runDir = await mkdtemp(join(dirname(resolve(spec.upper)), `.${basename(spec.upper)}-run-`));
  try {
    const dirs: RunDirs = {
      merged: join(runDir, 'merged'),
      scaffold: join(runDir, 'scaffold'),
      secrets: join(runDir, 'secrets'),
      hosts: join(runDir, 'hosts'),
      resolv: join(runDir, 'resolv.conf'),
    };
    const work = join(runDir, 'work');
    for (const d of [dirs.merged, dirs.scaffold, dirs.secrets, work]) await mkdir(d, { mode: 0o700 });
    const hostname = spec.hostname ?? DEFAULT_HOSTNAME;
    await writeFile(dirs.hosts, hostsFile(hostname), { mode: 0o644 });
    await writeFile(dirs.resolv, await hostResolvConf(), { mode: 0o644 });
    await matchRoot(spec.rootfs, spec.upper, rootless);
    const plan = await planMounts(spec.rootfs, spec.cwd, spec.mounts, dirs, rootless);

    const overlay = [
      `lowerdir=${dirs.scaffold}:${resolve(spec.rootfs)}`,
      `upperdir=${resolve(spec.upper)}`,
      `workdir=${work}`,
      // Keep the upper dir plain for the diff: whiteouts as 0/0 char devices, opaque dirs by xattr, full copies.
      'index=off',
      'metacopy=off',
      // userxattr (rootless) refuses redirect_dir=off, which still follows redirects; nofollow neither makes nor follows.
      ...(rootless ? ['redirect_dir=nofollow', 'userxattr'] : ['redirect_dir=off']),
    ].join(',');
    const args = [
      '--pdeathsig', 'KILL', '--',
      tools.unshare, '--mount', '--uts', '--ipc', '--pid', '--fork', '--kill-child',
      ...(spec.network === 'none' ? ['--net'] : []),
      ...(rootless ? ['--user', '--map-root-user'] : []),
      '--propagation', 'private', '--',
      tools.sh, '-c', RUN_SCRIPT, 'kiln-run', ...plan.ops, '--',
      ...commandChain(spec, tools, dirs.merged, rootless),
    ];
    const env = {
      PATH: SCRIPT_PATH,
      KILN_MERGED: dirs.merged,
      KILN_OVERLAY: overlay,
      KILN_CWD: plan.cwdRel,
      KILN_HOSTNAME: hostname,
      KILN_HOSTNAME_BIN: tools.hostname ?? '',
      KILN_IP: spec.network === 'none' ? (tools.ip ?? '') : '',
    };
    return await execute(tools.setpriv, args, env, spec);
  } finally {
    // The mounts lived in the dead namespace only; what is left here are plain files and empty dirs. Overlay
    // leaves work/work at mode 000, which only root may list: open it up for a rootless rm.
    await chmod(join(runDir, 'work', 'work'), 0o700).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rm(runDir, { recursive: true, force: true });
  }
}

/** env -i sets exactly spec.env; setpriv drops to Docker's capabilities and sets the groups; unshare chroots. */
function commandChain(spec: RunSpec, tools: HostTools, merged: string, rootless: boolean): string[] {
  const ids = rootless
    ? []
    : ['--regid', String(spec.user.gid), ...(spec.user.groups?.length ? ['--groups', spec.user.groups.join(',')] : ['--clear-groups'])];
  return [
    tools.env, '-i', '--', ...spec.env,
    tools.setpriv, '--bounding-set', `-all,${CAPABILITIES.map((c) => `+${c}`).join(',')}`, ...ids, '--',
    tools.unshare, '--root', merged, '--wd', spec.cwd, ...(rootless ? [] : ['--setuid', String(spec.user.uid)]), '--',
    ...spec.argv,
  ];
}

function execute(file: string, args: string[], env: Record<string, string>, spec: RunSpec): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const tail = new OutputTail();
    let setupError = '';
    let aborted = false;
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const onAbort = (): void => {
      aborted = true;
      if (child.pid !== undefined) killTree(child.pid);
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    let callbackError: unknown;
    child.stdout.on('data', (chunk: Buffer) => {
      tail.push(chunk);
      try {
        spec.onOutput?.(chunk);
      } catch (err) {
        // A throwing progress callback ends the RUN like an abort, and its error is the one reported.
        callbackError ??= err;
        if (child.pid !== undefined) killTree(child.pid);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (setupError.length < 8192) setupError += chunk.toString('utf8');
    });
    child.on('error', (err) => {
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new KilnError('BUILD_FAILED', `RUN cannot start ${file}: ${errorMessage(err)}`, {
        cause: err,
        hint: 'install util-linux ≥ 2.38 (unshare, setpriv, mount)',
      }));
    });
    child.on('close', (code, signal) => {
      spec.signal?.removeEventListener('abort', onAbort);
      if (callbackError !== undefined) {
        reject(callbackError);
        return;
      }
      if (aborted) {
        reject(new KilnError('BUILD_FAILED', `RUN ${commandText(spec.argv)} was aborted`, { cause: spec.signal?.reason }));
        return;
      }
      // unshare 2.38 re-raises the child's death signal on itself, except SIGKILL, which it cannot: it says so.
      const killed = code === 1 && /^unshare: sigprocmask unblock failed/.test(setupError.trim());
      if (setupError.trim() !== '' && code !== 0 && !killed) {
        reject(setupFailure(setupError, code));
        return;
      }
      const ended = killed ? 'SIGKILL' : signal;
      const exitCode = ended === null ? (code ?? 0) : 128 + osConstants.signals[ended];
      const result: RunResult = { exitCode, lastLines: explain(tail.result(), exitCode) };
      if (ended !== null) result.signal = ended;
      resolvePromise(result);
    });
  });
}

/** SIGKILL to the namespace's pid 1 takes every process of the RUN with it; then the unshare parent exits. */
function killTree(pid: number): void {
  let children: number[] = [];
  try {
    // Synchronous on purpose: the abort handler kills before anything else runs.
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Not forked yet, or no children list: the parent's death signal (--kill-child) still takes pid 1.
  }
  for (const c of children) signalIfAlive(c);
  signalIfAlive(pid);
}

function signalIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    // ESRCH: it already exited, which is what we wanted.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function setupFailure(stderr: string, code: number | null): KilnError {
  const lines = stderr.trim().split('\n');
  const message = lines.filter((l) => l.startsWith('kiln: ')).pop()?.slice(6) ?? lines[lines.length - 1] ?? '';
  const text = stderr.toLowerCase();
  let hint = 'run as root, or rootless with user namespaces enabled (see docs/rootless.md)';
  if (text.includes('unshare failed') || text.includes('operation not permitted')) {
    hint = 'the kernel refused new namespaces: run as root, or enable unprivileged user namespaces (docs/rootless.md)';
  } else if (text.includes('overlay')) {
    hint = 'overlayfs is needed (modprobe overlay; rootless needs Linux ≥ 5.11) and the upper dir must be on ext4/xfs/btrfs/tmpfs';
  }
  return new KilnError('BUILD_FAILED', `RUN setup failed: ${message}`, {
    hint,
    detail: { stderr: stderr.trim(), exitCode: code ?? undefined, setup: code === SETUP_FAILED },
  });
}

/** unshare's own exec failure reads like an internal error; say what happened in the rootfs' terms. */
function explain(lines: string[], code: number): string[] {
  const last = lines[lines.length - 1];
  const m = last === undefined ? null : /^unshare: failed to execute (.*): (.*)$/.exec(last);
  if (m === null || (code !== 127 && code !== 126)) return lines;
  const why = code === 127 ? 'executable file not found in the rootfs (or its PATH)' : `cannot execute: ${m[2]}`;
  return [...lines.slice(0, -1), `kiln: ${m[1]}: ${why}`];
}

function commandText(argv: string[]): string {
  const text = argv.join(' ');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
