import type { Digest } from './digest.js';
import { digestOf } from './digest.js';
import type { Descriptor } from './descriptor.js';
import { KilnError } from './errors.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';

/** An image manifest (OCI image-spec manifest.md, or Docker schema2). */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An image index (OCI image-index.md) or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * A manifest as received: its exact bytes (whose hash is its digest), the media type it was
 * served or stored with, and the parsed, validated document.
 */
export type RawManifest =
  | { kind: 'manifest'; mediaType: string; digest: Digest; bytes: Buffer; parsed: ImageManifest }
  | { kind: 'index'; mediaType: string; digest: Digest; bytes: Buffer; parsed: ImageIndex };

/** Upper bound on manifest size, as registries enforce (4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Parses and validates manifest bytes. `mediaTypeHint` is the Content-Type or descriptor media
 * type; when absent the document's own `mediaType` (or its shape) decides.
 */
export function parseManifest(bytes: Buffer, mediaTypeHint?: string, subject = 'manifest'): RawManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new KilnError('MANIFEST_INVALID', `${subject} is ${bytes.length} bytes, over the 4 MiB limit`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('MANIFEST_INVALID', `${subject} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KilnError('MANIFEST_INVALID', `${subject} must be a JSON object`);
  }
  const obj = doc as Record<string, unknown>;
  const declared = typeof obj.mediaType === 'string' ? obj.mediaType : undefined;
  const hint = mediaTypeHint && isManifestMediaType(mediaTypeHint) ? mediaTypeHint : undefined;
  const mediaType = declared ?? hint ?? (Array.isArray(obj.manifests) ? MediaType.OciIndex : MediaType.OciManifest);
  const digest = digestOf(bytes);
  if (isIndexMediaType(mediaType)) {
    return { kind: 'index', mediaType, digest, bytes, parsed: validateIndex(obj, subject) };
  }
  return { kind: 'manifest', mediaType, digest, bytes, parsed: validateImageManifest(obj, subject) };
}

/** Validates an image manifest document; errors name the offending field. */
export function validateImageManifest(doc: Record<string, unknown>, subject = 'manifest'): ImageManifest {
  if (doc.schemaVersion !== 2) throw new KilnError('MANIFEST_INVALID', `${subject}: schemaVersion must be 2`);
  if (typeof doc.config !== 'object' || doc.config === null) throw new KilnError('MANIFEST_INVALID', `${subject}: config is required`);
  if (!Array.isArray(doc.layers)) throw new KilnError('MANIFEST_INVALID', `${subject}: layers must be an array`);
  return doc as unknown as ImageManifest;
}

/** Validates an image index document; errors name the offending field. */
export function validateIndex(doc: Record<string, unknown>, subject = 'index'): ImageIndex {
  if (doc.schemaVersion !== 2) throw new KilnError('MANIFEST_INVALID', `${subject}: schemaVersion must be 2`);
  if (!Array.isArray(doc.manifests)) throw new KilnError('MANIFEST_INVALID', `${subject}: manifests must be an array`);
  return doc as unknown as ImageIndex;
}
