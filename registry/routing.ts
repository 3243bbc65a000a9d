import { type Digest, parseDigest } from '../oci/digest.js';
import { isKilnError } from '../oci/errors.js';
import { isValidRepositoryPath, isValidTag } from '../oci/reference.js';
import { REPOSITORY_NAME_MAX_LENGTH } from '../oci/reference-grammar.js';
import { RegistryError } from './errors.js';

/** One endpoint of distribution-spec § Endpoints, with the raw path parameters. */
export type RegistryRoute =
  | { area: 'base' }
  | { area: 'catalog' }
  | { area: 'blobs'; name: string; digest: string }
  | { area: 'uploads'; name: string; id: string | undefined }
  | { area: 'manifests'; name: string; reference: string }
  | { area: 'tags'; name: string }
  | { area: 'referrers'; name: string; digest: string };

// `<name>` may itself contain "blobs" or "manifests" as components: the greedy `(.+)` takes the last
// occurrence, as CNCF Distribution's router does. Uploads are tried before blobs for the same reason.
const PATTERNS: Array<[RegExp, (m: RegExpExecArray) => RegistryRoute]> = [
  [/^\/v2\/?$/, () => ({ area: 'base' })],
  [/^\/v2\/_catalog$/, () => ({ area: 'catalog' })],
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, (m) => ({ area: 'uploads', name: group(m, 1), id: undefined })],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ area: 'uploads', name: group(m, 1), id: group(m, 2) })],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, (m) => ({ area: 'blobs', name: group(m, 1), digest: decoded(group(m, 2)) })],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (m) => ({ area: 'manifests', name: group(m, 1), reference: decoded(group(m, 2)) })],
  [/^\/v2\/(.+)\/tags\/list$/, (m) => ({ area: 'tags', name: group(m, 1) })],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, (m) => ({ area: 'referrers', name: group(m, 1), digest: decoded(group(m, 2)) })],
];

/** The endpoint a request path names, or undefined when it names none. */
export function parseRoute(path: string): RegistryRoute | undefined {
  for (const [pattern, build] of PATTERNS) {
    const m = pattern.exec(path);
    if (m) return build(m);
  }
  return undefined;
}

/** Validates `<name>` (spec § Pulling manifests grammar, at most 255 characters), else 400 NAME_INVALID. */
export function checkName(name: string): string {
  if (isValidRepositoryPath(name)) return name;
  const why =
    name.length > REPOSITORY_NAME_MAX_LENGTH
      ? `is ${name.length} characters long; the limit is ${REPOSITORY_NAME_MAX_LENGTH}`
      : 'must be lowercase path components of letters and digits separated by ".", "_", "__" or "-", joined by "/"';
  throw new RegistryError('NAME_INVALID', `invalid repository name ${shown(name)}: it ${why}`, { detail: { name: shown(name) } });
}

/** Parses a digest from a URL or query, else 400 DIGEST_INVALID naming what was wrong. */
export function checkDigest(value: string | null | undefined, what = 'digest'): Digest {
  if (value === null || value === undefined || value === '') {
    throw new RegistryError('DIGEST_INVALID', `${what} is required (algorithm:hex, e.g. sha256:<64 hex>)`);
  }
  try {
    return parseDigest(value);
  } catch (err) {
    if (!isKilnError(err)) throw err;
    throw new RegistryError('DIGEST_INVALID', `invalid ${what} ${shown(value)}: use sha256:<64 hex> or sha512:<128 hex>`, { cause: err });
  }
}

/** A manifest `<reference>`: a digest when it has a colon (tags cannot), else a tag. */
export type ManifestReference = { kind: 'digest'; digest: Digest } | { kind: 'tag'; tag: string; valid: boolean };

/** Splits a `<reference>`; a malformed digest is 400 DIGEST_INVALID, a malformed tag is left to the caller. */
export function parseManifestReference(reference: string): ManifestReference {
  if (reference.includes(':')) return { kind: 'digest', digest: checkDigest(reference, 'manifest digest') };
  return { kind: 'tag', tag: reference, valid: isValidTag(reference) };
}

/** A short, JSON-quoted rendering of client input for messages. */
export function shown(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

function group(m: RegExpExecArray, i: number): string {
  return m[i] ?? '';
}

/** Some clients percent-encode the ":" of a digest; an undecodable segment stays as it is and fails validation. */
function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
