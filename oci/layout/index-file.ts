import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Descriptor } from '../descriptor.js';
import { isDigest } from '../digest.js';
import { KilnError } from '../errors.js';
import type { ImageIndex } from '../manifest.js';
import { MediaType } from '../media-types.js';
import { fsyncPath } from '../content/fs-blob-store.js';

/** The only image layout version defined (image-spec image-layout.md § oci-layout file). */
export const IMAGE_LAYOUT_VERSION = '1.0.0';

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

/** Parses an `oci-layout` file; errors name the file and the problem. */
export function parseLayoutHeader(bytes: Buffer, file: string): void {
  const doc = parseJsonObject(bytes, file);
  const version = doc.imageLayoutVersion;
  if (typeof version !== 'string') invalid(file, 'imageLayoutVersion is missing');
  if (version !== IMAGE_LAYOUT_VERSION) invalid(file, `imageLayoutVersion "${version}" is not supported (want ${IMAGE_LAYOUT_VERSION})`);
}

/** Parses and validates index.json (image-layout.md § index.json: an image index); errors name the file and the field. */
export function parseIndexFile(bytes: Buffer, file: string): ImageIndex {
  const doc = parseJsonObject(bytes, file);
  if (doc.schemaVersion !== 2) invalid(file, 'schemaVersion must be 2');
  if (doc.mediaType !== undefined && doc.mediaType !== MediaType.OciIndex) {
    invalid(file, `mediaType must be ${MediaType.OciIndex}, got ${JSON.stringify(doc.mediaType)}`);
  }
  if (!Array.isArray(doc.manifests)) invalid(file, 'manifests must be an array');
  (doc.manifests as unknown[]).forEach((entry, i) => validateDescriptor(entry, `${file}: manifests[${i}]`));
  return doc as unknown as ImageIndex;
}

/** Validates the descriptor fields index.json relies on. */
function validateDescriptor(value: unknown, where: string): asserts value is Descriptor {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(where, 'must be an object');
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '') fail(where, 'mediaType must be a non-empty string');
  if (!isDigest(d.digest)) fail(where, `digest ${JSON.stringify(d.digest)} is not a valid sha256/sha512 digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) fail(where, 'size must be a non-negative integer');
  if (d.annotations !== undefined) {
    const a = d.annotations;
    if (typeof a !== 'object' || a === null || Array.isArray(a) || Object.values(a).some((v) => typeof v !== 'string')) {
      fail(where, 'annotations must map strings to strings');
    }
  }
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

function parseJsonObject(bytes: Buffer, file: string): Record<string, unknown> {
  if (bytes.length > MAX_LAYOUT_FILE_BYTES) invalid(file, `${bytes.length} bytes is over the ${MAX_LAYOUT_FILE_BYTES}-byte limit`);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    invalid(file, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) invalid(file, 'must be a JSON object');
  return doc as Record<string, unknown>;
}

function invalid(file: string, problem: string): never {
  throw new KilnError('LAYOUT_INVALID', `${file}: ${problem}`);
}

function fail(where: string, problem: string): never {
  throw new KilnError('LAYOUT_INVALID', `${where}: ${problem}`);
}
