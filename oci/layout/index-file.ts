import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { showValue } from '../descriptor.js';
import { KilnError } from '../errors.js';
import { parseLayoutIndex, parseOciLayoutFile } from '../layout-types.js';
import type { ImageIndex } from '../manifest.js';
import { MediaType } from '../media-types.js';
import { fsyncPath } from '../content/fs-blob-store.js';

/** index.json and oci-layout are small documents; anything bigger is not one. */
export const MAX_LAYOUT_FILE_BYTES = 4 * 1024 * 1024;

/**
 * Ref-name grammar of image-layout.md § index.json: components of alphanumerics joined by
 * `-._:@+` or `--`, separated by `/`.
 */
const REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Throws REFERENCE_INVALID unless `name` follows the image-layout ref-name grammar. */
export function validateRefName(name: string): string {
  if (name.length === 0 || name.length > 4096 || !REF_NAME.test(name)) {
    throw new KilnError('REFERENCE_INVALID', `invalid OCI layout ref name "${name.slice(0, 200)}": use letters, digits and -._:@+ (image-layout.md)`);
  }
  return name;
}

/** Parses an `oci-layout` file (at most MAX_LAYOUT_FILE_BYTES); errors name the file and the problem. */
export function parseLayoutHeader(bytes: Buffer, file: string): void {
  checkSize(bytes, file);
  parseOciLayoutFile(bytes, file);
}

/** Parses and validates index.json (image-layout.md § index.json: an image index); errors name the file and the field. */
export function parseIndexFile(bytes: Buffer, file: string): ImageIndex {
  checkSize(bytes, file);
  const index = parseLayoutIndex(bytes, file);
  // validateIndex also takes a Docker manifest list; a layout's index.json is an OCI image index.
  if (index.mediaType !== undefined && index.mediaType !== MediaType.OciIndex) {
    throw new KilnError('LAYOUT_INVALID', `${file}: mediaType: must be "${MediaType.OciIndex}", got ${showValue(index.mediaType)}`);
  }
  return index;
}

/** Serialises an index the way index.json is stored: one document, newline-terminated. */
export function serializeIndex(index: ImageIndex): Buffer {
  return Buffer.from(`${JSON.stringify(index)}\n`);
}

/** Writes `path` atomically: temp file in `tmpDir` (same filesystem), fsync, rename, fsync the directory. */
export async function writeFileAtomic(path: string, data: Buffer, tmpDir: string): Promise<void> {
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `file-${process.pid}-${randomBytes(8).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    await fsyncPath(dirname(path));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function checkSize(bytes: Buffer, file: string): void {
  if (bytes.length > MAX_LAYOUT_FILE_BYTES) {
    throw new KilnError('LAYOUT_INVALID', `${file}: ${bytes.length} bytes is over the ${MAX_LAYOUT_FILE_BYTES}-byte limit`);
  }
}
