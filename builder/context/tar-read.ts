import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { byteLimit, decompressStream } from '../../oci/compression.js';
import { KilnError, errorMessage } from '../../oci/errors.js';

// Reading the tars a build is given (a context on stdin, ADD'ed local archives): any of the compressions Docker
// recognises, every member checked before it is used.

/** Compression of a tar as Docker's DecompressStream recognises it, by magic number. */
export type TarCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Bounds on what one tar may make us store. */
export interface TarLimits {
  /** Total bytes of file content; default 64 GiB. */
  maxBytes: number;
  /** Most members; default 1,000,000. */
  maxEntries: number;
}

/** Limits applied unless the caller passes others. */
export const DEFAULT_TAR_LIMITS: TarLimits = { maxBytes: 64 * 1024 ** 3, maxEntries: 1_000_000 };

/** A member that passed the checks: a canonical relative path, and for files the content stream (must be consumed). */
export type TarItem =
  | { type: 'file'; path: string; mode: number; uid: number; gid: number; mtime: number; size: number; body: Readable }
  | { type: 'directory'; path: string; mode: number; uid: number; gid: number; mtime: number }
  | { type: 'symlink'; path: string; mode: number; uid: number; gid: number; mtime: number; linkname: string }
  | { type: 'hardlink'; path: string; mode: number; uid: number; gid: number; mtime: number; linkname: string };

/** The compression named by a stream's first bytes. */
export function detectTarCompression(head: Uint8Array): TarCompression {
  const starts = (magic: number[]): boolean => head.length >= magic.length && magic.every((b, i) => head[i] === b);
  if (starts([0x1f, 0x8b])) return 'gzip';
  if (starts([0x42, 0x5a, 0x68])) return 'bzip2';
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (starts([0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  return 'none';
}

/** `input` decompressed according to its magic number; bzip2 and xz go through the system's `bzip2`/`xz`. */
export async function decompressed(input: Readable, subject: string): Promise<Readable> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < 6) {
    const next = await it.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    head.push(chunk);
    length += chunk.length;
  }
  const first = Buffer.concat(head);
  const replay = Readable.from(
    (async function* () {
      yield first;
      if (done) return;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    })(),
    { objectMode: false },
  );
  const kind = detectTarCompression(first);
  if (kind === 'none') return replay;
  if (kind === 'gzip' || kind === 'zstd') return replay.pipe(decompressStream(kind));
  return external(kind === 'xz' ? 'xz' : 'bzip2', replay, subject);
}

/** Decompresses through an external program, failing with a clear message when it is not installed. */
function external(tool: 'xz' | 'bzip2', input: Readable, subject: string): Readable {
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = child.stdout;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (err) => {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    out.destroy(
      new KilnError(
        missing ? 'BUILD_FAILED' : 'ARCHIVE_INVALID',
        missing ? `${subject} is ${tool}-compressed but "${tool}" is not installed: install it or recompress as gzip or zstd` : `${subject}: ${tool}: ${errorMessage(err)}`,
        { cause: err },
      ),
    );
  });
  child.on('close', (code) => {
    if (code !== 0 && code !== null) out.destroy(new KilnError('ARCHIVE_INVALID', `${subject} is not valid ${tool} data: ${stderr.trim() || `exit ${code}`}`));
  });
  // The decompressor may exit before reading all input (a truncated stream); that is reported through `close`.
  child.stdin.on('error', () => undefined);
  input.on('error', (err) => out.destroy(err));
  input.pipe(child.stdin);
  return out;
}

/** True when `file` is, after decompression, a tar whose first header is valid (BuildKit's isArchivePath). */
export async function isTarFile(file: string): Promise<boolean> {
  let stream: Readable | undefined;
  try {
    stream = await decompressed(createReadStream(file), file);
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= 512) break;
    }
    return validHeader(Buffer.concat(chunks).subarray(0, 512));
  } catch {
    // Data that does not decompress is not an archive: ADD copies it as a file.
    return false;
  } finally {
    stream?.destroy();
  }
}

/** A 512-byte ustar/v7 header block with a correct checksum (an all-zero block is the end, not a header). */
function validHeader(block: Buffer): boolean {
  if (block.length < 512 || block.every((b) => b === 0)) return false;
  const field = block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/u, '').trim();
  if (!/^[0-7]+$/u.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum === Number.parseInt(field, 8);
}

/**
 * Streams the members of a (possibly compressed) tar to `handler` after checking each: names made relative
 * (a leading '/' dropped, as Docker does), '..' escapes, links leaving the archive, members below a symlink of
 * the archive, devices and fifos, and the size limits are refused with UNSAFE_PATH / TOO_LARGE.
 */
export async function readTar(input: Readable, options: { subject: string; limits?: TarLimits }, handler: (item: TarItem) => Promise<void>): Promise<void> {
  const { subject } = options;
  const limits = options.limits ?? DEFAULT_TAR_LIMITS;
  // Go's archive/tar (Docker's reader) accepts pre-POSIX v7 headers too; isTarFile's checksum test is the gate.
  const extract = tar.extract({ allowUnknownFormat: true } as unknown as Parameters<typeof tar.extract>[0]);
  const source = await decompressed(input, subject);
  const feeding = pipeline(source, byteLimit(limits.maxBytes + limits.maxEntries * 1024 + 1024 ** 2, subject), extract);
  feeding.catch(() => undefined);
  const symlinks = new Set<string>();
  let entries = 0;
  let bytes = 0;
  try {
    for await (const entry of extract) {
      const header = entry.header;
      const type: string = header.type ?? 'file';
      if (type === 'pax-global-header' || type === 'pax-header') {
        entry.resume();
        continue;
      }
      if (++entries > limits.maxEntries) throw new KilnError('TOO_LARGE', `${subject} has more than ${limits.maxEntries} members`);
      const path = memberPath(subject, header.name);
      if (path === '') {
        // The archive's root ('./'): nothing to create.
        entry.resume();
        continue;
      }
      for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) {
        if (symlinks.has(dir)) throw new KilnError('UNSAFE_PATH', `${subject}: member ${path} lies below the symlink ${dir} of the same archive`);
      }
      const meta = { path, mode: (header.mode ?? 0o644) & 0o7777, uid: header.uid ?? 0, gid: header.gid ?? 0, mtime: Math.floor((header.mtime?.getTime() ?? 0) / 1000) };
      if (type === 'file' || type === 'contiguous-file') {
        const size = header.size ?? 0;
        bytes += size;
        if (bytes > limits.maxBytes) throw new KilnError('TOO_LARGE', `${subject} holds more than ${limits.maxBytes} bytes of files`);
        symlinks.delete(path);
        await handler({ type: 'file', ...meta, size, body: Readable.from(entry, { objectMode: false }) });
      } else if (type === 'directory') {
        symlinks.delete(path);
        await handler({ type: 'directory', ...meta });
      } else if (type === 'symlink') {
        const linkname = header.linkname ?? '';
        if (linkname === '') throw new KilnError('UNSAFE_PATH', `${subject}: symlink ${path} has an empty target`);
        symlinks.add(path);
        await handler({ type: 'symlink', ...meta, linkname });
      } else if (type === 'link') {
        const target = memberPath(subject, header.linkname ?? '');
        if (target === '') throw new KilnError('UNSAFE_PATH', `${subject}: hard link ${path} has an empty target`);
        symlinks.delete(path);
        await handler({ type: 'hardlink', ...meta, linkname: target });
      } else {
        throw new KilnError('UNSAFE_PATH', `${subject}: member ${path} is a ${type}; only files, directories and links are accepted`);
      }
      entry.resume();
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    source.destroy();
    await feeding.catch(() => undefined);
    if (err instanceof KilnError) throw err;
    throw new KilnError('ARCHIVE_INVALID', `${subject} is not a readable tar archive: ${errorMessage(err)}`, { cause: err });
  }
}

/** A member name as a canonical relative path ('' for the root); throws UNSAFE_PATH for a '..' escape or a NUL. */
export function memberPath(subject: string, raw: string): string {
  if (raw.includes('\0')) throw new KilnError('UNSAFE_PATH', `${subject}: member name contains a NUL byte`);
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new KilnError('UNSAFE_PATH', `${subject}: member "${raw}" escapes the archive with ".."`);
      parts.pop();
    } else parts.push(part);
  }
  return parts.join('/');
}
