import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { fsyncPath } from '../content/fs-blob-store.js';

/** One member to write: a directory, bytes in memory, or a file on disk streamed in. */
export type TarSource =
  | { name: string; directory: true }
  | { name: string; data: Buffer }
  | { name: string; path: string };

/** Fixed timestamp so the same image always gives the same archive bytes. */
const EPOCH = new Date(0);

/**
 * Writes a tar of `sources` to `dest` atomically: into `DEST.tmp-…` beside it, fsync, rename,
 * fsync the directory. On any error the temp file is removed and `dest` is untouched.
 */
export async function writeTarAtomic(dest: string, sources: Iterable<TarSource>): Promise<void> {
  const tmp = join(dirname(dest), `${basename(dest)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const pack = tar.pack();
  const writing = pipeline(pack, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
  writing.catch(() => undefined);
  // A failing output (disk full) must end the loop even if tar-stream never calls back for the entry.
  const outputFailed = new Promise<never>((_, reject) => writing.catch(reject));
  outputFailed.catch(() => undefined);
  try {
    for (const source of sources) await Promise.race([addMember(pack, source), outputFailed]);
    pack.finalize();
    await writing;
    await fsyncPath(tmp);
    await rename(tmp, dest);
    await fsyncPath(dirname(dest));
  } catch (err) {
    pack.destroy();
    await writing.catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

async function addMember(pack: tar.Pack, source: TarSource): Promise<void> {
  const common = { mtime: EPOCH, uid: 0, gid: 0, uname: '', gname: '' };
  if ('directory' in source) {
    await entryDone(pack, { ...common, name: `${source.name.replace(/\/$/, '')}/`, type: 'directory', mode: 0o755 }, Buffer.alloc(0));
    return;
  }
  if ('data' in source) {
    await entryDone(pack, { ...common, name: source.name, type: 'file', mode: 0o644, size: source.data.length }, source.data);
    return;
  }
  const { size } = await stat(source.path);
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry({ ...common, name: source.name, type: 'file', mode: 0o644, size }, (err) => (err ? reject(err) : resolve()));
    pipeline(createReadStream(source.path), entry).catch(reject);
  });
}

function entryDone(pack: tar.Pack, header: Partial<Header> & { name: string }, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, data, (err) => (err ? reject(err) : resolve()));
  });
}
