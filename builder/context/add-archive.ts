import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { LayerEntry } from '../layer/entry.js';
import { KilnError } from '../../oci/errors.js';
import { readTar, type TarLimits } from './tar-read.js';

/** Options of `archiveEntries`. */
export interface ArchiveEntriesOptions {
  /** The archive on disk. */
  file: string;
  /** Name for messages ('context: app.tar.gz'). */
  subject: string;
  /** Destination directory in the image, relative, '' for the root. */
  destDir: string;
  /** Where extracted file contents are kept until the layer is written. */
  tmpDir: string;
  /** --chown: replaces every member's owner; without it the archive's owners are kept (as Docker's untar). */
  chown?: { uid: number; gid: number } | undefined;
  limits?: TarLimits;
}

/**
 * The layer entries of an ADD'ed local archive extracted into `destDir`: members safe-checked as a layer's
 * (no escapes, nothing below a symlink, no devices), hard links kept inside the archive, file contents
 * written under `tmpDir`. A later member of the same path replaces an earlier one, as `tar -x` does.
 */
export async function archiveEntries(options: ArchiveEntriesOptions): Promise<LayerEntry[]> {
  await mkdir(options.tmpDir, { recursive: true });
  const store = await mkdtemp(join(options.tmpDir, 'add-archive-'));
  const byPath = new Map<string, LayerEntry>();
  let n = 0;
  const place = (p: string): string => (options.destDir === '' ? p : `${options.destDir}/${p}`);
  await readTar(createReadStream(options.file), { subject: options.subject, ...(options.limits ? { limits: options.limits } : {}) }, async (item) => {
    const owner = options.chown ?? { uid: item.uid, gid: item.gid };
    const meta = { path: place(item.path), mode: item.mode, uid: owner.uid, gid: owner.gid, mtime: item.mtime };
    let entry: LayerEntry;
    switch (item.type) {
      case 'file': {
        const source = join(store, String(n++));
        await pipeline(item.body, createWriteStream(source, { mode: 0o600 }));
        entry = { ...meta, type: 'file', source, size: item.size };
        break;
      }
      case 'directory':
        entry = { ...meta, type: 'directory' };
        break;
      case 'symlink':
        entry = { ...meta, mode: 0o777, type: 'symlink', linkname: item.linkname };
        break;
      case 'hardlink': {
        const target = byPath.get(place(item.linkname));
        if (!target || target.type !== 'file') {
          throw new KilnError('UNSAFE_PATH', `${options.subject}: hard link ${item.path} points to "${item.linkname}", which is not an earlier file of the archive`);
        }
        entry = { ...meta, type: 'hardlink', linkname: target.path };
        break;
      }
    }
    const previous = byPath.get(entry.path);
    // A directory met again keeps its place (children may follow it); anything else is replaced in place.
    if (previous?.type === 'directory' && entry.type === 'directory') byPath.set(entry.path, entry);
    else {
      if (previous) byPath.delete(entry.path);
      byPath.set(entry.path, entry);
    }
  });
  return [...byPath.values()];
}
