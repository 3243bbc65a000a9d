import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { decompressStream } from '../oci/compression.js';
import type { Digest } from '../oci/digest.js';
import { VerifyingStream } from '../oci/digest.js';
import { KilnError, errorMessage, isKilnError } from '../oci/errors.js';
import { DOUBLE_WHITEOUT_PREFIX, FileTree, IMPLIED, type FileInfo } from './filetree.js';
import { TypeFlag, goModeIsDir, goPathClean, goTarFileMode } from './go-path.js';

/** What one pass over a layer tar yields: dive's tree plus what dive drops but an overlay honours. */
export interface LayerContents {
  tree: FileTree;
  /** Tar entries read (those dive skips, named `.`, excluded). */
  entries: number;
  /** Directories made opaque by a `.wh..wh..opq` marker (cleaned paths, no leading slash). */
  opaqueDirs: string[];
  /** Entries (with bytes) overwritten by a later entry of the same path in this same tar. */
  duplicates: Array<{ path: string; size: number }>;
}

/** Options of `readLayer`. */
export interface ReadLayerOptions {
  /** The layer blob, already checked against its descriptor's digest and size by `Target.getBlob`. */
  blob: Readable;
  /** Media type (or 'gzip' | 'zstd' | 'none'): how to decompress. */
  compression: string;
  /** The config's diff_id: the uncompressed tar must hash to it. */
  diffId: Digest | undefined;
  /** Names the layer in errors, e.g. `layer 2/5 sha256:…`. */
  subject: string;
}

const TYPE_FLAGS: Partial<Record<string, number>> = {
  file: TypeFlag.reg,
  link: TypeFlag.link,
  symlink: TypeFlag.symlink,
  'character-device': TypeFlag.char,
  'block-device': TypeFlag.block,
  directory: TypeFlag.dir,
  fifo: TypeFlag.fifo,
  'contiguous-file': TypeFlag.cont,
};

/** tar-stream's `allowUnknownFormat` (v7 tars, which Go reads too) is missing from its typings. */
const EXTRACT_OPTIONS = { allowUnknownFormat: true } as Parameters<typeof tar.extract>[0];

/** dive's FileInfo for one tar header (NewFileInfoFromTarHeader): size = header size, Go's mode bits. */
export function fileInfoOf(header: Header, path: string): FileInfo {
  // PAX records tar-stream keeps without applying uid and gid (Go's reader applies them).
  const pax = typeof header.pax === 'object' && header.pax !== null ? (header.pax as Record<string, string>) : undefined;
  const typeflag = TYPE_FLAGS[String(header.type)] ?? 0;
  const mode = goTarFileMode(header.mode ?? 0, typeflag);
  const paxInt = (key: string): number | undefined => (pax?.[key] !== undefined ? Number.parseInt(pax[key] as string, 10) : undefined);
  return {
    path,
    typeflag,
    linkname: header.linkname ?? '',
    size: header.size ?? 0,
    mode,
    uid: paxInt('uid') ?? header.uid ?? 0,
    gid: paxInt('gid') ?? header.gid ?? 0,
    isDir: goModeIsDir(mode),
  };
}

/**
 * Streams one layer blob once — decompress, check the diff_id, walk the tar headers, skip the contents — and
 * builds dive's tree of it. Memory grows with the number of paths, never with bytes. Errors name the layer.
 */
export async function readLayer(options: ReadLayerOptions): Promise<LayerContents> {
  const { subject } = options;
  const contents: LayerContents = { tree: new FileTree(), entries: 0, opaqueDirs: [], duplicates: [] };
  const extract = tar.extract(EXTRACT_OPTIONS);
  extract.on('entry', (header, stream, next) => {
    stream.on('end', () => next());
    stream.on('error', (err: Error) => next(err));
    record(contents, header);
    stream.resume();
  });
  const diff = new VerifyingStream({ expected: options.diffId, subject: `${subject}: uncompressed content` });
  try {
    await pipeline(options.blob, decompressStream(options.compression), diff, extract);
  } catch (err) {
    throw layerError(err, subject, options.diffId);
  }
  return contents;
}

/** Adds one header to the layer's contents, as dive's getFileList + AddPath do. */
function record(contents: LayerContents, header: Header): void {
  // dive: "always ensure relative path notations are not parsed as part of the filename".
  const path = goPathClean(header.name);
  if (path === '.') return;
  contents.entries++;
  const info = fileInfoOf(header, path);
  const { tree } = contents;
  tree.fileSize += info.size;
  const base = path.slice(path.lastIndexOf('/') + 1);
  if (base.startsWith(DOUBLE_WHITEOUT_PREFIX)) {
    if (base === `${DOUBLE_WHITEOUT_PREFIX}opq`) contents.opaqueDirs.push(path.slice(0, Math.max(0, path.lastIndexOf('/'))));
  }
  const previous = tree.getNode(path);
  if (previous?.parent && previous.info !== IMPLIED && previous.info.size > 0) contents.duplicates.push({ path, size: previous.info.size });
  tree.addPath(path, info);
}

/** One error naming the layer, keeping the typed code of digest and size mismatches. */
function layerError(err: unknown, subject: string, diffId: Digest | undefined): KilnError {
  if (isKilnError(err, 'DIGEST_MISMATCH') && errorMessage(err).includes('uncompressed content')) {
    return new KilnError('DIGEST_MISMATCH', `${errorMessage(err)}; the config's diff_id ${diffId ?? ''} does not match the layer`, {
      cause: err,
      hint: 'the image config and its layers disagree: rebuild or re-push the image',
    });
  }
  if (isKilnError(err, 'DIGEST_MISMATCH', 'SIZE_MISMATCH')) {
    return new KilnError(err.code, `${subject}: ${errorMessage(err)}`, { cause: err, hint: 'the layer blob is corrupt or was tampered with' });
  }
  return new KilnError('VALIDATION', `${subject} is not a readable layer tar: ${errorMessage(err)}`, {
    cause: err,
    hint: 'the layer is corrupt, truncated or not the compression its media type names',
  });
}
