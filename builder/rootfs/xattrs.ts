import { spawn } from 'node:child_process';
import { KilnError } from '../../oci/errors.js';

/** Extended attributes of one file, values as bytes. */
export type Xattrs = Record<string, Buffer>;

const INSTALL_HINT = 'install the "attr" package (apt-get install attr) which provides getfattr/setfattr';

/**
 * Whether a layer keeps this xattr: file capabilities and user attributes. overlayfs' own (trusted/user.overlay.*)
 * would change how a rootfs behaves as a lower dir, and SELinux labels belong to the host, not the image.
 */
export function isLayerXattr(name: string): boolean {
  if (name === 'security.capability') return true;
  return name.startsWith('user.') && !name.startsWith('user.overlay.');
}

/**
 * Every xattr under `root` (symlinks not followed), read with one `getfattr -R` run: node has no xattr API.
 * Keys of the map are absolute paths as getfattr prints them, unescaped.
 */
export async function readXattrTree(root: string): Promise<Map<string, Xattrs>> {
  const { stdout } = await run('getfattr', ['-R', '-P', '-h', '--absolute-names', '-m', '-', '-d', '-e', 'hex', '--', root], undefined);
  return parseDump(stdout);
}

/** Sets xattrs on files with one `setfattr --restore` run; `items` maps absolute paths to their attributes. */
export async function writeXattrs(items: Map<string, Xattrs>): Promise<void> {
  if (items.size === 0) return;
  const parts: Buffer[] = [];
  for (const [path, attrs] of items) {
    parts.push(Buffer.from('# file: '), escapePath(path), Buffer.from('\n'));
    for (const [name, value] of Object.entries(attrs)) parts.push(Buffer.from(`${name}=0x${value.toString('hex')}\n`));
    parts.push(Buffer.from('\n'));
  }
  await run('setfattr', ['-h', '--restore=-'], Buffer.concat(parts));
}

/** getfattr's dump format: `# file: <escaped path>` then `name=0x<hex>` lines, blocks separated by blank lines. */
export function parseDump(dump: Buffer): Map<string, Xattrs> {
  const out = new Map<string, Xattrs>();
  let current: Xattrs | undefined;
  for (const raw of splitLines(dump)) {
    if (raw.length === 0) {
      current = undefined;
      continue;
    }
    const line = raw.toString('latin1');
    if (line.startsWith('# file: ')) {
      current = {};
      out.set(unescapePath(raw.subarray('# file: '.length)), current);
      continue;
    }
    const eq = line.indexOf('=');
    if (!current || eq < 0) continue;
    const name = unescapePath(raw.subarray(0, eq));
    const value = line.slice(eq + 1);
    if (!value.startsWith('0x')) throw new KilnError('BUILD_FAILED', `getfattr printed "${line.slice(0, 80)}" for ${name}, not a hex value`);
    current[name] = Buffer.from(value.slice(2), 'hex');
  }
  return out;
}

function splitLines(b: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, start)) {
    lines.push(b.subarray(start, i));
    start = i + 1;
  }
  if (start < b.length) lines.push(b.subarray(start));
  return lines;
}

/** getfattr writes control characters, '\' and '=' as `\ooo` octal; the rest are the name's raw bytes. */
function unescapePath(b: Buffer): string {
  const bytes: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    const octal = b.toString('latin1', i + 1, i + 4);
    if (c === 0x5c && /^[0-7]{3}$/.test(octal)) {
      bytes.push(parseInt(octal, 8));
      i += 3;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString('utf8');
}

function escapePath(path: string): Buffer {
  const out: number[] = [];
  for (const c of Buffer.from(path)) {
    if (c < 0x21 || c === 0x7f || c === 0x5c || c === 0x3d) for (const d of Buffer.from(`\\${c.toString(8).padStart(3, '0')}`)) out.push(d);
    else out.push(c);
  }
  return Buffer.from(out);
}

/** Runs an attr tool, failing with the install hint when it is missing and with its stderr when it fails. */
function run(command: string, args: string[], input: Buffer | undefined): Promise<{ stdout: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') reject(new KilnError('BUILD_FAILED', `${command} is not installed; xattrs can't be read or set without it`, { hint: INSTALL_HINT, cause: e }));
      else reject(e);
    });
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout: Buffer.concat(out) });
      else {
        const message = Buffer.concat(err).toString('utf8').trim().split('\n').slice(0, 3).join('; ');
        reject(new KilnError('BUILD_FAILED', `${command} ${args.slice(0, -1).join(' ')} failed (exit ${code}): ${message}`));
      }
    });
    if (input && child.stdin) {
      // A tool that exits early closes its stdin; its exit code and stderr tell the story, not the EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}
