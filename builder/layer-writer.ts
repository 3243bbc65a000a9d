import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { VerifyingStream, type Digest } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';

export interface LayerFile {
  /** Path of the compressed layer on disk; the caller moves or deletes it. */
  path: string;
  digest: Digest;
  size: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: Digest;
  mediaType: string;
  /** Removes the temp directory holding the layer. */
  cleanup(): Promise<void>;
}

export interface WriteLayerOptions {
  /** Directory whose contents become the layer, paths relative to it. */
  directory: string;
  /** Timestamp of every entry, in seconds (SOURCE_DATE_EPOCH semantics); default 0 for reproducibility. */
  epoch?: number;
}

/**
 * Writes a directory as a deterministic gzip'd tar layer: entries sorted by path, owner root,
 * fixed mtime, no user/group names, so the same tree always gives the same digest.
 */
export async function writeDirectoryLayer(options: WriteLayerOptions): Promise<LayerFile> {
  const mtime = new Date((options.epoch ?? 0) * 1000);
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-layer-'));
  const path = join(tmp, 'layer.tar.gz');
  const pack = tar.pack();
  // Without an expected digest these streams only measure: the tar's digest and the gzip's.
  const diff = new VerifyingStream();
  const blob = new VerifyingStream();
  const written = pipeline(pack, diff, createGzip({ level: 6 }), blob, createWriteStream(path));
  try {
    for (const abs of await walkSorted(options.directory)) {
      const name = relative(options.directory, abs).split(sep).join('/');
      const st = await lstat(abs);
      const header = { name, mtime, uid: 0, gid: 0, uname: '', gname: '', mode: st.mode & 0o7777 };
      if (st.isDirectory()) await addEntry(pack, { ...header, type: 'directory' });
      else if (st.isSymbolicLink()) await addEntry(pack, { ...header, type: 'symlink', linkname: await readlink(abs) });
      else if (st.isFile()) await addFile(pack, { ...header, type: 'file', size: st.size }, abs);
    }
    pack.finalize();
    await written;
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return {
    path,
    digest: blob.digest,
    size: blob.size,
    diffId: diff.digest,
    mediaType: MediaType.OciLayerGzip,
    cleanup: () => rm(tmp, { recursive: true, force: true }),
  };
}

type TarHeader = Parameters<tar.Pack['entry']>[0];

/** Every path below `dir`, parents before children, siblings in byte order. */
async function walkSorted(dir: string): Promise<string[]> {
  const out: string[] = [];
  const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const name of names) {
    const abs = join(dir, name);
    out.push(abs);
    if ((await lstat(abs)).isDirectory()) out.push(...(await walkSorted(abs)));
  }
  return out;
}

function addEntry(pack: tar.Pack, header: TarHeader): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (err) => (err ? reject(err) : resolve())));
}

async function addFile(pack: tar.Pack, header: TarHeader, abs: string): Promise<void> {
  const entry = pack.entry(header);
  await pipeline(createReadStream(abs), entry);
}
