import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError, errorMessage } from '../../oci/errors.js';

/** A file fetched for ADD <url>: where it is, its sha256 and the mtime Last-Modified gave (else undefined). */
export interface Download {
  path: string;
  sha256: string;
  size: number;
  /** File name taken from the URL path ('__unnamed__' when it has none, as BuildKit). */
  name: string;
  mtime: number | undefined;
}

/** True for an http(s) source that is not a Git repository. */
export function isHttpSource(src: string): boolean {
  return /^https?:\/\//iu.test(src) && !isGitSource(src);
}

/** True for the forms BuildKit treats as a Git repository (git@, git://, ssh://, an http(s) URL of a .git). */
export function isGitSource(src: string): boolean {
  if (/^(git@|git:\/\/|ssh:\/\/|git\+)/iu.test(src)) return true;
  if (!/^https?:\/\//iu.test(src)) return false;
  const noFragment = src.split('#')[0] ?? '';
  return /\.git\/?$/iu.test(noFragment) || (src.includes('#') && /\.git(#|$)/iu.test(src));
}

/** The file name BuildKit gives a downloaded URL. */
export function urlFileName(url: string): string {
  try {
    const base = posix.basename(new URL(url).pathname);
    return base === '' || base === '.' || base === '/' ? '__unnamed__' : decodeURIComponent(base);
  } catch {
    return '__unnamed__';
  }
}

/** Parses `--checksum=sha256:<hex>`; only sha256 is accepted for HTTP sources (Dockerfile reference § ADD --checksum). */
export function parseChecksum(checksum: string): string {
  const m = /^sha256:([a-f0-9]{64})$/u.exec(checksum);
  if (!m) throw new KilnError('DOCKERFILE_INVALID', `invalid --checksum "${checksum}": expected sha256:<64 lowercase hex digits>`);
  return m[1] as string;
}

/**
 * Downloads `url` into `tmpDir` once (kept by URL, reused by later calls in the same build), verifying
 * `checksum` before the file is used; a mismatch or a non-2xx answer is BUILD_FAILED.
 */
export async function download(url: string, options: { tmpDir: string; checksum?: string | undefined; maxBytes?: number }): Promise<Download> {
  const want = options.checksum === undefined ? undefined : parseChecksum(options.checksum);
  const key = createHash('sha256').update(url).digest('hex').slice(0, 32);
  const dir = join(options.tmpDir, 'add-url');
  const path = join(dir, key);
  const metaPath = `${path}.json`;
  const name = urlFileName(url);
  await mkdir(dir, { recursive: true });
  let meta: Download | undefined;
  try {
    meta = JSON.parse(await readFile(metaPath, 'utf8')) as Download;
  } catch {
    meta = undefined;
  }
  if (!meta) {
    meta = await fetchTo(url, path, name, options.maxBytes ?? 16 * 1024 ** 3);
    await writeFile(metaPath, JSON.stringify(meta));
  }
  if (want !== undefined && meta.sha256 !== want) {
    throw new KilnError('BUILD_FAILED', `ADD ${url}: checksum mismatch: got sha256:${meta.sha256}, --checksum wants sha256:${want}`, {
      hint: 'the file at the URL changed, or the --checksum value is wrong',
    });
  }
  return meta;
}

async function fetchTo(url: string, path: string, name: string, maxBytes: number): Promise<Download> {
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (err) {
    throw new KilnError('NETWORK', `ADD ${url}: cannot download: ${errorMessage(err)}`, { cause: err });
  }
  if (!res.ok || res.body === null) {
    throw new KilnError('BUILD_FAILED', `ADD ${url}: the server answered ${res.status} ${res.statusText}`.trimEnd());
  }
  const hash = createHash('sha256');
  let size = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > maxBytes) {
        cb(new KilnError('TOO_LARGE', `ADD ${url}: larger than ${maxBytes} bytes`));
        return;
      }
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const tmp = `${path}.partial`;
  try {
    await pipeline(Readable.fromWeb(res.body as Parameters<typeof Readable.fromWeb>[0]), measure, createWriteStream(tmp, { mode: 0o600 }));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof KilnError) throw err;
    throw new KilnError('NETWORK', `ADD ${url}: download failed: ${errorMessage(err)}`, { cause: err });
  }
  const lastModified = res.headers.get('last-modified');
  const ms = lastModified === null ? Number.NaN : Date.parse(lastModified);
  return { path, sha256: hash.digest('hex'), size, name, mtime: Number.isNaN(ms) ? undefined : Math.floor(ms / 1000) };
}
