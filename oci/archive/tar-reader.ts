import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Header } from 'tar-stream';
import { decompressStream, detectCompression } from '../compression.js';
import { KilnError, errorMessage } from '../errors.js';
import { isNotFound } from '../content/fs-blob-store.js';

/** Bounds on what an archive may make us read or store. */
export interface ArchiveLimits {
  /** Largest single member (a layer); default 64 GiB. */
  maxMemberBytes: number;
  /** Largest JSON document (index.json, manifest.json, config, manifests); default 4 MiB. */
  maxJsonBytes: number;
  /** Most members in one archive; default 1,000,000. */
  maxMembers: number;
}

/** Limits applied unless the caller passes others. */
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxMemberBytes: 64 * 1024 ** 3,
  maxJsonBytes: 4 * 1024 * 1024,
  maxMembers: 1_000_000,
};

/** A member that passed the safety checks; `file` members must be consumed (or are drained) by the handler. */
export type TarMember =
  | { kind: 'file'; name: string; size: number; stream: Readable }
  | { kind: 'directory'; name: string }
  | { kind: 'symlink'; name: string; target: string };

type TarEntry = AsyncIterable<Buffer> & { header: Header };

export interface ReadTarOptions {
  limits: ArchiveLimits;
  /** Symlinks are rejected unless this is set; `target` is already resolved inside the archive. */
  allowSymlinks?: boolean;
}

/**
 * Streams the members of a tar (plain, gzip or zstd) to `handler`, rejecting absolute paths, `..`
 * traversal, hard links, device/fifo members, duplicate files and over-limit sizes before any byte
 * of the member is stored. Nothing is written to disk by this function.
 */
export async function readTarMembers(file: string, options: ReadTarOptions, handler: (member: TarMember) => Promise<void>): Promise<void> {
  const compression = detectCompression(await readHead(file, 4));
  const extract = tar.extract();
  const feeding = pipeline(createReadStream(file), decompressStream(compression), extract);
  // Observed below; this keeps an early failure from being reported as unhandled.
  feeding.catch(() => undefined);
  const seen = new Set<string>();
  let count = 0;
  try {
    for await (const source of extract) {
      // streamx (tar-stream's stream library) ships no types; its streams are async iterables of Buffers.
      const entry = source as unknown as TarEntry;
      if (++count > options.limits.maxMembers) {
        throw new KilnError('TOO_LARGE', `${file} has more than ${options.limits.maxMembers} members`);
      }
      const member = checkMember(file, entry, options, seen);
      if (member) await handler(member);
      // Whatever the handler left unread is skipped so the next header can be parsed.
      await drain(entry);
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    await feeding.catch(() => undefined);
    if (err instanceof KilnError) throw err;
    throw new KilnError('ARCHIVE_INVALID', `${file} is not a readable tar archive: ${errorMessage(err)}`, { cause: err });
  }
}

/** A member path made relative and canonical; throws UNSAFE_PATH for absolute or escaping paths. */
export function safeMemberPath(archive: string, raw: string): string {
  if (raw.includes('\0')) throw new KilnError('UNSAFE_PATH', `${archive}: member name contains a NUL byte`);
  if (raw.startsWith('/')) throw new KilnError('UNSAFE_PATH', `${archive}: member "${raw}" has an absolute path`);
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new KilnError('UNSAFE_PATH', `${archive}: member "${raw}" escapes the archive with ".."`);
  return parts.join('/');
}

function checkMember(archive: string, entry: TarEntry, options: ReadTarOptions, seen: Set<string>): TarMember | undefined {
  const { header } = entry;
  const type: string = header.type ?? 'file';
  if (type === 'pax-global-header') return undefined;
  const name = safeMemberPath(archive, header.name);
  switch (type) {
    case 'directory':
      return { kind: 'directory', name };
    case 'file':
    case 'contiguous-file': {
      if (name === '') throw new KilnError('ARCHIVE_INVALID', `${archive}: a file member has an empty name`);
      const size = header.size ?? 0;
      if (size > options.limits.maxMemberBytes) {
        throw new KilnError('TOO_LARGE', `${archive}: member ${name} is ${size} bytes, over the ${options.limits.maxMemberBytes}-byte limit`);
      }
      claim(archive, name, seen);
      // tar-stream entries are streamx streams; Node consumers (FsBlobStore, pipeline) need a Node Readable.
      return { kind: 'file', name, size, stream: Readable.from(entry, { objectMode: false }) };
    }
    case 'symlink': {
      const target = resolveLink(archive, name, header.linkname ?? '');
      if (!options.allowSymlinks) {
        throw new KilnError('UNSAFE_PATH', `${archive}: member ${name} is a symlink (to ${header.linkname ?? ''}); archives of images hold only files`);
      }
      claim(archive, name, seen);
      return { kind: 'symlink', name, target };
    }
    case 'link':
      throw new KilnError('UNSAFE_PATH', `${archive}: member ${name} is a hard link (to ${header.linkname ?? ''}); archives of images hold only files`);
    default:
      throw new KilnError('UNSAFE_PATH', `${archive}: member ${name} is a ${type}, not a regular file`);
  }
}

/** A symlink's target as a member path; throws UNSAFE_PATH when it is absolute or leaves the archive. */
function resolveLink(archive: string, name: string, linkname: string): string {
  if (linkname === '' || linkname.startsWith('/')) {
    throw new KilnError('UNSAFE_PATH', `${archive}: symlink ${name} points to "${linkname}", outside the archive`);
  }
  const resolved = posix.normalize(posix.join(posix.dirname(name), linkname));
  if (resolved === '..' || resolved.startsWith('../')) {
    throw new KilnError('UNSAFE_PATH', `${archive}: symlink ${name} points to "${linkname}", outside the archive`);
  }
  return resolved;
}

function claim(archive: string, name: string, seen: Set<string>): void {
  // A later duplicate would silently replace what was already checked and stored.
  if (seen.has(name)) throw new KilnError('ARCHIVE_INVALID', `${archive}: member ${name} appears twice`);
  seen.add(name);
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // Discarding a member the handler did not need.
  }
}

async function readHead(file: string, length: number): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (isNotFound(err)) throw new KilnError('NOT_FOUND', `archive ${file} does not exist`, { cause: err });
    throw err;
  }
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
