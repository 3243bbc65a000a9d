import type { Digest } from './digest.js';
import { digestOf } from './digest.js';
import { isJsonObject, isMediaType, showValue, validateAnnotations, validateDescriptor, type Descriptor } from './descriptor.js';
import { KilnError, type KilnErrorCode } from './errors.js';
import { isImageManifestMediaType, isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';

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
 * Parses and validates manifest bytes, kept as received; `mediaTypeHint` is the Content-Type or
 * descriptor media type. Errors are MANIFEST_INVALID naming the field under `subject` (default `manifest <digest>`).
 */
export function parseManifest(bytes: Buffer, mediaTypeHint?: string, subject?: string): RawManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new KilnError('MANIFEST_INVALID', `${subject ?? 'manifest'} is ${bytes.length} bytes, over the 4 MiB limit`);
  }
  // The digest is of the bytes received, never of a re-serialisation (DESIGN.md, descriptor.md § Digests).
  const digest = digestOf(bytes);
  const name = subject ?? `manifest ${digest}`;
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('MANIFEST_INVALID', `${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isJsonObject(doc)) throw new KilnError('MANIFEST_INVALID', `${name} must be a JSON object, got ${showValue(doc)}`);
  const mediaType = documentMediaType(doc, manifestHint(mediaTypeHint), name);
  if (isIndexMediaType(mediaType)) {
    return { kind: 'index', mediaType, digest, bytes, parsed: validateIndex(doc, name) };
  }
  return { kind: 'manifest', mediaType, digest, bytes, parsed: validateImageManifest(doc, name) };
}

/** A hint counts only when it names a manifest type: registries also answer application/json or octet-stream. */
function manifestHint(hint: string | undefined): string | undefined {
  const bare = hint?.split(';')[0]?.trim();
  return bare && isManifestMediaType(bare) ? bare : undefined;
}

/**
 * The media type the document is read as. The distribution-spec requires the declared mediaType
 * to match the Content-Type it is pushed and served with (GHSA-mc8v-mgrf-8f4m), and Docker
 * schema2 makes mediaType a required field, unlike OCI (manifest.md § mediaType: SHOULD).
 */
function documentMediaType(doc: Record<string, unknown>, hint: string | undefined, name: string): string {
  const declared = doc.mediaType;
  if (declared !== undefined) {
    if (typeof declared !== 'string' || !isManifestMediaType(declared)) {
      throw new KilnError('MANIFEST_INVALID', `${name}: mediaType: ${showValue(declared)} is not an image manifest or index media type`);
    }
    if (hint !== undefined && hint !== declared) {
      throw new KilnError('MANIFEST_INVALID', `${name}: mediaType: the document declares "${declared}" but was served or described as "${hint}"`);
    }
    return declared;
  }
  if (hint === MediaType.DockerManifest || hint === MediaType.DockerManifestList) {
    throw new KilnError('MANIFEST_INVALID', `${name}: mediaType: required in a Docker schema2 document (expected "${hint}")`);
  }
  return hint ?? ('manifests' in doc ? MediaType.OciIndex : MediaType.OciManifest);
}

/** Validates an image manifest document (manifest.md § Image Manifest Property Descriptions); errors name the offending field. */
export function validateImageManifest(doc: unknown, subject = 'manifest'): ImageManifest {
  const fail = (field: string, why: string): KilnError => new KilnError('MANIFEST_INVALID', `${subject}: ${field}: ${why}`);
  if (!isJsonObject(doc)) throw new KilnError('MANIFEST_INVALID', `${subject} must be a JSON object, got ${showValue(doc)}`);
  checkSchemaVersion(doc, subject, 'MANIFEST_INVALID');
  if ('mediaType' in doc && !isImageManifestMediaType(asString(doc.mediaType))) {
    throw fail('mediaType', `must be "${MediaType.OciManifest}" or "${MediaType.DockerManifest}", got ${showValue(doc.mediaType)}`);
  }
  // GHSA-77vh-xpmg-72qh: a document that could also be read as an index is ambiguous; reject it.
  if ('manifests' in doc) throw fail('manifests', 'not allowed in an image manifest (the document would also read as an index)');
  checkArtifactType(doc, subject, 'MANIFEST_INVALID');
  if (!('config' in doc)) throw fail('config', 'required');
  validateDescriptor(doc.config, `${subject}: config`);
  if (!Array.isArray(doc.layers)) throw fail('layers', `required array of descriptors, got ${showValue(doc.layers)}`);
  doc.layers.forEach((layer: unknown, i) => validateDescriptor(layer, `${subject}: layers[${i}]`));
  if ('subject' in doc) validateDescriptor(doc.subject, `${subject}: subject`);
  if ('annotations' in doc) validateAnnotations(doc.annotations, `${subject}: annotations`);
  return doc as unknown as ImageManifest;
}

/**
 * Validates an image index document (image-index.md § Image Index Property Descriptions); errors
 * name the offending field. `code` lets an OCI layout report its index.json as LAYOUT_INVALID.
 */
export function validateIndex(doc: unknown, subject = 'index', code: KilnErrorCode = 'MANIFEST_INVALID'): ImageIndex {
  const fail = (field: string, why: string): KilnError => new KilnError(code, `${subject}: ${field}: ${why}`);
  if (!isJsonObject(doc)) throw new KilnError(code, `${subject} must be a JSON object, got ${showValue(doc)}`);
  checkSchemaVersion(doc, subject, code);
  if ('mediaType' in doc && !isIndexMediaType(asString(doc.mediaType))) {
    throw fail('mediaType', `must be "${MediaType.OciIndex}" or "${MediaType.DockerManifestList}", got ${showValue(doc.mediaType)}`);
  }
  // GHSA-77vh-xpmg-72qh: a document that could also be read as a manifest is ambiguous; reject it.
  for (const field of ['config', 'layers']) {
    if (field in doc) throw fail(field, 'not allowed in an image index (the document would also read as a manifest)');
  }
  checkArtifactType(doc, subject, code);
  // image-index.md § manifests: REQUIRED, MAY be empty; unknown entry media types MUST NOT error.
  if (!Array.isArray(doc.manifests)) throw fail('manifests', `required array of descriptors, got ${showValue(doc.manifests)}`);
  doc.manifests.forEach((entry: unknown, i) => validateDescriptor(entry, `${subject}: manifests[${i}]`, code));
  if ('subject' in doc) validateDescriptor(doc.subject, `${subject}: subject`, code);
  if ('annotations' in doc) validateAnnotations(doc.annotations, `${subject}: annotations`, code);
  return doc as unknown as ImageIndex;
}

/** The descriptor that points at `raw`: its media type, digest and size, plus artifactType when set. */
export function manifestDescriptor(raw: RawManifest): Descriptor {
  const descriptor: Descriptor = { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
  if (raw.parsed.artifactType !== undefined) descriptor.artifactType = raw.parsed.artifactType;
  return descriptor;
}

/** Descriptors `raw` refers to: config and layers of a manifest, entries of an index, then the subject if any. */
export function childDescriptors(raw: RawManifest): Descriptor[] {
  const children = raw.kind === 'manifest' ? [raw.parsed.config, ...raw.parsed.layers] : [...raw.parsed.manifests];
  if (raw.parsed.subject) children.push(raw.parsed.subject);
  return children;
}

/** manifest.md / image-index.md § schemaVersion: MUST be 2. */
function checkSchemaVersion(doc: Record<string, unknown>, subject: string, code: KilnErrorCode): void {
  if (doc.schemaVersion === 2) return;
  const schema1 = doc.schemaVersion === 1 ? ' (Docker schema1 manifests are not supported)' : '';
  throw new KilnError(code, `${subject}: schemaVersion: must be 2, got ${showValue(doc.schemaVersion)}${schema1}`);
}

/** manifest.md / image-index.md § artifactType: OPTIONAL, an RFC 6838 media type when set. */
function checkArtifactType(doc: Record<string, unknown>, subject: string, code: KilnErrorCode): void {
  if ('artifactType' in doc && !isMediaType(doc.artifactType)) {
    throw new KilnError(code, `${subject}: artifactType: must be a media type of the form type/subtype (RFC 6838), got ${showValue(doc.artifactType)}`);
  }
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
