import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, type Digest } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { MediaType } from '../../oci/media-types.js';
import type { EntryMeta, LayerEntry } from './entry.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, compareLayerPaths } from './order.js';
import { ParallelGzip } from './parallel-gzip.js';
import { ReadAhead } from './read-ahead.js';
import { encodeHeader, endOfArchive, padding, type TarHeaderFields } from './tar-header.js';

/** The order the writer puts entries in (re-exported from order.ts, where the readers of layers find it too). */
export { compareLayerPaths } from './order.js';

/** A layer blob written to disk. */
export interface LayerFile {
  /** Where the compressed blob is (`<dir>/<hex>.tar.gz`). */
  path: string;
  digest: Digest;
  size: number;
  /** Digest of the uncompressed tar (the config's rootfs.diff_ids entry). */
  diffId: Digest;
  mediaType: string;
}

/** What to write and where. */
export interface WriteLayerOptions {
  entries: LayerEntry[];
  /** SOURCE_DATE_EPOCH in seconds: no entry's mtime is later than this. */
  epoch: number;
  /** Existing directory to put the blob in. */
  dir: string;
  /** Filled with the sha256 hex of each file source's bytes as they went into the layer (read once for both). */
  contentDigests?: Map<string, string>;
}

/**
 * Writes entries as a reproducible gzip'd tar layer: sorted paths, numeric owners, no user/group names or
 * atime/ctime, mtimes clamped to `epoch`, and gzip members compressed in parallel. The same entries give the
 * same bytes on any machine with the same zlib.
 */
export async function writeLayer(options: WriteLayerOptions): Promise<LayerFile> {
  const members = toMembers(options.entries, options.epoch);
  const tmp = join(options.dir, `.layer-${randomBytes(8).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  let closed = false;
  try {
    const gz = new ParallelGzip({ sink: (data) => writeAll(fh, data) });
    const ahead = new ReadAhead(members.map((m) => ({ source: m.source, size: m.header.size })));
    for (const [i, member] of members.entries()) {
      await gz.write(encodeHeader(member.header));
      if (member.source !== undefined) {
        if (ahead.isSmall(i)) {
          const data = await ahead.take(i);
          if (data.length !== member.header.size) throw changedSize(member.source, member.header);
          options.contentDigests?.set(member.source, createHash('sha256').update(data).digest('hex'));
          await gz.write(data);
        } else await streamContent(gz, member.source, member.header, options.contentDigests);
        const pad = padding(member.header.size);
        if (pad > 0) await gz.write(Buffer.alloc(pad));
      }
    }
    await gz.write(endOfArchive());
    const result = await gz.end();
    await fh.close();
    closed = true;
    const path = join(options.dir, `${digestHex(result.compressed.digest)}.tar.gz`);
    await rename(tmp, path);
    return {
      path,
      digest: result.compressed.digest,
      size: result.compressed.size,
      diffId: result.uncompressed.digest,
      mediaType: MediaType.OciLayerGzip,
    };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Throws what writeLayer would throw for `entries` before writing anything (paths, numbers, duplicates, hard links). */
export function checkLayerEntries(entries: LayerEntry[], epoch: number): void {
  toMembers(entries, epoch);
}

interface Member {
  header: TarHeaderFields;
  /** File whose bytes follow the header. */
  source?: string;
}

/** Validated, sorted tar members for the entries; whiteouts become their `.wh.` files. */
function toMembers(entries: LayerEntry[], epoch: number): Member[] {
  const byPath = new Map<string, Member>();
  const add = (path: string, member: Member): void => {
    if (byPath.has(path)) throw new KilnError('VALIDATION', `layer entry "${path}" is listed twice: keep one entry per path`);
    byPath.set(path, member);
  };
  // containerd ≥ 2.0 writes whiteouts with mode 0, owner 0:0 and mtime 0 whatever the epoch; so do we, for markers too.
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new KilnError('VALIDATION', `layer epoch ${epoch} is not a whole number of seconds ≥ 0`);
  const marker = (name: string): Member => ({ header: { name, type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 } });
  for (const entry of entries) {
    checkPath(entry.path);
    if (entry.type === 'whiteout') {
      const slash = entry.path.lastIndexOf('/');
      const name = `${entry.path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${entry.path.slice(slash + 1)}`;
      add(name, marker(name));
      continue;
    }
    if (entry.type === 'opaque') {
      const name = `${entry.path}/${OPAQUE_MARKER}`;
      add(name, marker(name));
      continue;
    }
    const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      throw new KilnError('VALIDATION', `layer entry "${entry.path}" uses the reserved whiteout prefix ${WHITEOUT_PREFIX}: rename it`);
    }
    checkNumbers(entry);
    const common = { name: entry.path, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: Math.min(entry.mtime, epoch), size: 0 };
    const xattrs = entry.xattrs && Object.keys(entry.xattrs).length > 0 ? { xattrs: entry.xattrs } : {};
    if (entry.type === 'file') add(entry.path, { header: { ...common, ...xattrs, type: 'file', size: entry.size }, source: entry.source });
    else if (entry.type === 'directory') add(entry.path, { header: { ...common, ...xattrs, type: 'directory' } });
    else if (entry.type === 'symlink') add(entry.path, { header: { ...common, ...xattrs, type: 'symlink', linkname: entry.linkname } });
    else add(entry.path, { header: { ...common, ...xattrs, type: 'hardlink', linkname: entry.linkname } });
  }
  const sorted = [...byPath.entries()].sort(([a], [b]) => compareLayerPaths(a, b)).map(([, m]) => m);
  checkHardlinks(sorted, byPath);
  return sorted;
}

function checkPath(path: string): void {
  const parts = path.split('/');
  if (path === '' || path.includes('\0') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new KilnError('VALIDATION', `layer entry path "${path}" is not relative and canonical (no leading '/', '.', '..' or '//')`);
  }
}

function checkNumbers(entry: EntryMeta & { size?: number }): void {
  if (!Number.isFinite(entry.mtime)) throw new KilnError('VALIDATION', `layer entry "${entry.path}" has mtime ${entry.mtime}: expected seconds since the epoch`);
  for (const key of ['mode', 'uid', 'gid', 'size'] as const) {
    const value = entry[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
      throw new KilnError('VALIDATION', `layer entry "${entry.path}" has ${key} ${String(value)}: expected a whole number ≥ 0`);
    }
  }
}

/** A hard link must name a regular file written earlier in the same layer, or extractors cannot make it. */
function checkHardlinks(sorted: Member[], byPath: Map<string, Member>): void {
  for (const { header } of sorted) {
    if (header.type !== 'hardlink') continue;
    const target = byPath.get(header.linkname ?? '');
    if (!target || target.header.type !== 'file' || compareLayerPaths(target.header.name, header.name) >= 0) {
      throw new KilnError(
        'VALIDATION',
        `layer entry "${header.name}" is a hard link to "${header.linkname ?? ''}", which is not a regular file sorted before it in the same layer`,
      );
    }
  }
}

/** Streams a file's bytes, refusing a file whose size changed since it was listed (the tar header is already out). */
async function streamContent(gz: ParallelGzip, source: string, header: TarHeaderFields, digests: Map<string, string> | undefined): Promise<void> {
  const hash = digests ? createHash('sha256') : undefined;
  let copied = 0;
  for await (const chunk of createReadStream(source, { highWaterMark: 256 * 1024 })) {
    const buf = chunk as Buffer;
    copied += buf.length;
    if (copied > header.size) break;
    hash?.update(buf);
    await gz.write(buf);
  }
  if (copied !== header.size) throw changedSize(source, header);
  if (hash) digests?.set(source, hash.digest('hex'));
}

function changedSize(source: string, header: TarHeaderFields): KilnError {
  return new KilnError('BUILD_FAILED', `file ${source} for layer entry "${header.name}" changed size while the layer was written (expected ${header.size} bytes)`);
}

async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await fh.write(data, offset, data.length - offset);
    offset += bytesWritten;
  }
}
