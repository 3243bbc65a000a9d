import type { Digest } from './digest.js';
import { digestAlgorithm, digestOf, parseDigest } from './digest.js';
import { KilnError, type KilnErrorCode } from './errors.js';

/** Platform of an image (image-spec image-index.md § platform). */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** A content descriptor (image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
}

/** Annotation keys defined by the image-spec (annotations.md). */
export const Annotation = {
  RefName: 'org.opencontainers.image.ref.name',
  Created: 'org.opencontainers.image.created',
} as const;

/** RFC 6838 § 4.2 restricted-name on both sides of the slash, as the image-spec JSON schema spells it. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
/** RFC 4648 § 4: standard alphabet, padded. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** True when `value` has the RFC 6838 `type/subtype` shape descriptors require (descriptor.md § Properties). */
export function isMediaType(value: unknown): value is string {
  return typeof value === 'string' && MEDIA_TYPE.test(value);
}

/** A short, quoted rendering of an offending value for error messages. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    // JSON.stringify yields undefined for undefined and functions, and throws on bigint.
    text = (JSON.stringify(value) as string | undefined) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates a string→string map (annotations.md § Rules); `path` names the field in errors. */
export function validateAnnotations(value: unknown, path: string, code: KilnErrorCode = 'MANIFEST_INVALID'): Record<string, string> {
  if (!isJsonObject(value)) throw new KilnError(code, `${path}: must be an object of strings, got ${showValue(value)}`);
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new KilnError(code, `${path}[${JSON.stringify(key)}]: must be a string, got ${showValue(v)}`);
  }
  return value as Record<string, string>;
}

/** Validates an array of strings; `path` names the field in errors. */
export function validateStringArray(value: unknown, path: string, code: KilnErrorCode = 'MANIFEST_INVALID'): string[] {
  if (!Array.isArray(value)) throw new KilnError(code, `${path}: must be an array of strings, got ${showValue(value)}`);
  value.forEach((v: unknown, i) => {
    if (typeof v !== 'string') throw new KilnError(code, `${path}[${i}]: must be a string, got ${showValue(v)}`);
  });
  return value as string[];
}

/** Validates a platform object (image-index.md § platform); `path` names the field in errors. */
export function validatePlatform(value: unknown, path: string, code: KilnErrorCode = 'MANIFEST_INVALID'): Platform {
  if (!isJsonObject(value)) throw new KilnError(code, `${path}: must be an object, got ${showValue(value)}`);
  // image-index.md § platform: architecture and os are REQUIRED strings.
  for (const key of ['architecture', 'os'] as const) {
    const v = value[key];
    if (typeof v !== 'string' || v === '') throw new KilnError(code, `${path}.${key}: required non-empty string, got ${showValue(v)}`);
  }
  for (const key of ['os.version', 'variant'] as const) {
    if (key in value && typeof value[key] !== 'string') {
      throw new KilnError(code, `${path}.${key}: must be a string, got ${showValue(value[key])}`);
    }
  }
  for (const key of ['os.features', 'features'] as const) {
    if (key in value) validateStringArray(value[key], `${path}.${key}`, code);
  }
  return value as unknown as Platform;
}

/**
 * Validates a descriptor (descriptor.md § Properties): errors name the field under `path`, e.g.
 * `manifest sha256:…: layers[2].digest: invalid digest "sha256:xyz"`.
 */
export function validateDescriptor(value: unknown, path: string, code: KilnErrorCode = 'MANIFEST_INVALID'): Descriptor {
  if (!isJsonObject(value)) throw new KilnError(code, `${path}: must be a descriptor object, got ${showValue(value)}`);
  if (!isMediaType(value.mediaType)) {
    const got = value.mediaType === undefined ? 'missing' : `got ${showValue(value.mediaType)}`;
    throw new KilnError(code, `${path}.mediaType: required media type of the form type/subtype (RFC 6838), ${got}`);
  }
  const digest = descriptorDigest(value.digest, `${path}.digest`, code);
  const size = value.size;
  // descriptor.md § size: int64, MUST NOT be negative; beyond 2^53 JSON numbers lose precision.
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new KilnError(code, `${path}.size: required non-negative integer, got ${showValue(size)}`);
  }
  if ('urls' in value) {
    // descriptor.md § urls: each entry MUST conform to RFC 3986.
    validateStringArray(value.urls, `${path}.urls`, code).forEach((u, i) => {
      if (!URL.canParse(u)) throw new KilnError(code, `${path}.urls[${i}]: not a URL: ${showValue(u)}`);
    });
  }
  if ('annotations' in value) validateAnnotations(value.annotations, `${path}.annotations`, code);
  if ('artifactType' in value && !isMediaType(value.artifactType)) {
    throw new KilnError(code, `${path}.artifactType: must be a media type of the form type/subtype (RFC 6838), got ${showValue(value.artifactType)}`);
  }
  if ('platform' in value) validatePlatform(value.platform, `${path}.platform`, code);
  if ('data' in value) checkEmbeddedData(value.data, digest, size, `${path}.data`, code);
  return value as unknown as Descriptor;
}

function descriptorDigest(value: unknown, path: string, code: KilnErrorCode): Digest {
  if (typeof value !== 'string') throw new KilnError(code, `${path}: required digest string, got ${showValue(value)}`);
  try {
    return parseDigest(value);
  } catch (err) {
    throw new KilnError(code, `${path}: invalid digest ${showValue(value)}`, {
      cause: err,
      hint: 'expected algorithm:encoded, e.g. sha256 followed by 64 lowercase hex characters',
    });
  }
}

/** descriptor.md § data: base64 (RFC 4648 § 4) whose decoded bytes MUST be the referenced content. */
function checkEmbeddedData(value: unknown, digest: Digest, size: number, path: string, code: KilnErrorCode): void {
  if (typeof value !== 'string' || !BASE64.test(value)) {
    throw new KilnError(code, `${path}: must be standard padded base64, got ${showValue(value)}`);
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== size) {
    throw new KilnError(code, `${path}: decodes to ${bytes.length} bytes but the descriptor's size is ${size}`);
  }
  const actual = digestOf(bytes, digestAlgorithm(digest));
  if (actual !== digest) throw new KilnError(code, `${path}: decodes to content with digest ${actual}, not the descriptor's ${digest}`);
}
