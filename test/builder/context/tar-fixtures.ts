import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

/** One member of a test tar. */
export interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  content?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
}

/** An uncompressed tar of `members`. */
export async function makeTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const m of members) {
    const header = {
      name: m.name,
      type: m.type ?? 'file',
      mode: m.mode ?? (m.type === 'directory' ? 0o755 : 0o644),
      uid: m.uid ?? 0,
      gid: m.gid ?? 0,
      mtime: new Date((m.mtime ?? 1_600_000_000) * 1000),
      ...(m.linkname === undefined ? {} : { linkname: m.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (m.type === undefined || m.type === 'file') pack.entry(header, m.content ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** True when the command exists on this machine. */
export function hasTool(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** `data` compressed with gzip or an external tool (xz, bzip2, zstd). */
export function compress(data: Buffer, kind: 'none' | 'gzip' | 'xz' | 'bzip2' | 'zstd'): Buffer {
  if (kind === 'none') return data;
  if (kind === 'gzip') return gzipSync(data);
  const r = spawnSync(kind, ['-c'], { input: data, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${kind} failed: ${r.stderr.toString()}`);
  return r.stdout;
}
