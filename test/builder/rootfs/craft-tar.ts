import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

/** One member of a hand-made (possibly hostile) tar. */
export interface CraftEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  data?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  pax?: Record<string, string>;
}

/** Bytes of a tar holding `entries` exactly as given (names are not cleaned: that is the point). */
export async function craftTar(entries: CraftEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? 1_600_000_000) * 1000),
      linkname: e.linkname ?? '',
      size: type === 'file' ? data.length : 0,
      devmajor: type.endsWith('device') ? 1 : 0,
      devminor: type.endsWith('device') ? 3 : 0,
      ...(e.pax ? { pax: e.pax } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, type === 'file' ? data : Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Writes the tar to `path`, gzip'd unless `plain`. */
export async function writeTar(path: string, entries: CraftEntry[], compression: 'gzip' | 'none' = 'gzip'): Promise<string> {
  const bytes = await craftTar(entries);
  await writeFile(path, compression === 'gzip' ? gzipSync(bytes) : bytes);
  return path;
}
