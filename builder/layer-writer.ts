import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entriesFromDirectory } from './layer/from-directory.js';
import { writeLayer, type LayerFile as WrittenLayer } from './layer/writer.js';

/** A layer written to a temp directory of its own; the caller moves or deletes `path`. */
export interface LayerFile extends WrittenLayer {
  /** Removes the temp directory holding the layer. */
  cleanup(): Promise<void>;
}

/** Which directory to write as a layer. */
export interface WriteLayerOptions {
  /** Directory whose contents become the layer, paths relative to it. */
  directory: string;
  /** Timestamp of every entry, in seconds (SOURCE_DATE_EPOCH semantics); default 0 for reproducibility. */
  epoch?: number;
}

/**
 * Writes a directory as a deterministic gzip'd tar layer in a temp directory: every entry owned by root and
 * stamped with `epoch`, so the same tree always gives the same digest whoever owns the files.
 */
export async function writeDirectoryLayer(options: WriteLayerOptions): Promise<LayerFile> {
  const epoch = options.epoch ?? 0;
  const entries = (await entriesFromDirectory(options.directory)).map((entry) =>
    entry.type === 'whiteout' || entry.type === 'opaque' ? entry : { ...entry, uid: 0, gid: 0, mtime: epoch },
  );
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-layer-'));
  const cleanup = (): Promise<void> => rm(tmp, { recursive: true, force: true });
  try {
    return { ...(await writeLayer({ entries, epoch, dir: tmp })), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
