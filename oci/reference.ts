import { isDigest, parseDigest, type Digest } from './digest.js';
import { errorMessage, KilnError, type KilnErrorOptions } from './errors.js';
import {
  DOMAIN_REGEXP,
  IDENTIFIER_REGEXP,
  PATH_COMPONENT_REGEXP,
  REMOTE_NAME_REGEXP,
  REPOSITORY_NAME_MAX_LENGTH,
  TAG_MAX_LENGTH,
  TAG_REGEXP,
} from './reference-grammar.js';

/** A normalised image reference: `registry/repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host[:port], `docker.io` for Docker Hub. */
  registry: string;
  /** Repository path, `library/alpine` for official images. */
  repository: string;
  tag?: string | undefined;
  digest?: Digest | undefined;
}

/** A repository without tag or digest, as `kiln tags REPO` and registry auth scopes name it. */
export interface RepositoryName {
  registry: string;
  repository: string;
}

/** Docker Hub's canonical registry name; familiar references omit it. */
export const DEFAULT_REGISTRY = 'docker.io';
/** Tag assumed when a reference names neither a tag nor a digest. */
export const DEFAULT_TAG = 'latest';

// The "Docker Index" name, still accepted and canonicalised to docker.io (normalize.go, legacyDefaultDomain).
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
// No valid reference comes near this (255-char path, 128-char tag, sha512 digest, a DNS name of at most 253):
// longer input is refused before any regular expression runs over it.
const INPUT_MAX_LENGTH = 1024;

/**
 * Parses a reference as `docker pull` does (ParseNormalizedNamed): `alpine` → `docker.io/library/alpine:latest`.
 * The default tag is added only when neither tag nor digest is given; a tag and a digest are both kept.
 */
export function parseReference(input: string): ImageReference {
  const parts = parseParts(input, 'reference');
  return parts.tag === undefined && parts.digest === undefined ? { ...parts, tag: DEFAULT_TAG } : parts;
}

/** Parses a repository name (no tag, no digest) with the same normalisation: `alpine` → docker.io/library/alpine. */
export function parseRepository(input: string): RepositoryName {
  const parts = parseParts(input, 'repository');
  if (parts.tag === undefined && parts.digest === undefined) {
    return { registry: parts.registry, repository: parts.repository };
  }
  const what = parts.digest === undefined ? `tag ":${parts.tag ?? ''}"` : `digest "@${parts.digest}"`;
  // `kiln tags localhost:5000` reads as image "localhost" tagged "5000": say what was probably meant.
  const hostLike = parts.tag !== undefined && /^\d+$/.test(parts.tag) && !input.includes('/');
  throw new KilnError('REFERENCE_INVALID', `invalid repository ${quote(input)}: a repository takes no ${what}`, {
    hint: hostLike ? `"${input}" reads as an image name and a tag; name a repository on it, e.g. ${input}/NAME` : undefined,
  });
}

/** The canonical form: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: ImageReference): string {
  return `${formatRepository(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** `registry/repository`, without tag or digest. */
export function formatRepository(ref: RepositoryName): string {
  return `${ref.registry}/${ref.repository}`;
}

/** Docker's FamiliarName: drops `docker.io/` and, for official images, `library/`. */
export function familiarName(ref: RepositoryName): string {
  if (ref.registry !== DEFAULT_REGISTRY) return formatRepository(ref);
  const official = ref.repository.startsWith(OFFICIAL_PREFIX) ? ref.repository.slice(OFFICIAL_PREFIX.length) : '';
  // Only a single-component name under library/ is an official image (normalize.go, familiarizeName).
  return official !== '' && !official.includes('/') ? official : ref.repository;
}

/** Docker's FamiliarString: the familiar name with the tag and digest, e.g. `alpine:3.20`. */
export function familiarString(ref: ImageReference): string {
  return `${familiarName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The reference with `tag` set (digest kept); throws REFERENCE_INVALID for a malformed tag. */
export function referenceWithTag(ref: ImageReference, tag: string): ImageReference {
  const problem = tagProblem(tag);
  if (problem) throw new KilnError('REFERENCE_INVALID', `invalid tag ${quote(tag)} for ${formatRepository(ref)}: ${problem}`);
  return { ...ref, tag };
}

/** The reference pinned to `digest` (tag kept, as docker's WithDigest does); throws REFERENCE_INVALID for a bad digest. */
export function referenceWithDigest(ref: ImageReference, digest: string): ImageReference {
  try {
    return { ...ref, digest: parseDigest(digest) };
  } catch (err) {
    throw new KilnError('REFERENCE_INVALID', `invalid digest for ${formatRepository(ref)}: ${errorMessage(err)}`, { cause: err });
  }
}

/** The reference without its tag, for pinned pulls where only the digest should count. */
export function referenceWithoutTag(ref: ImageReference): ImageReference {
  return ref.digest === undefined ? { ...ref } : { registry: ref.registry, repository: ref.repository, digest: ref.digest };
}

/** True when `tag` matches the tag grammar `[\w][\w.-]{0,127}`. */
export function isValidTag(tag: string): boolean {
  return tagProblem(tag) === undefined;
}

/** True when `path` is a valid repository path (`library/alpine`): the registry's NAME_INVALID check. */
export function isValidRepositoryPath(path: string): boolean {
  return path.length <= REPOSITORY_NAME_MAX_LENGTH && REMOTE_NAME_REGEXP.test(path);
}

/** True for `localhost`, `127.x.x.x` and `[::1]`, with an optional port: registries that may be spoken to over plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::\d+)?$/.exec(registry);
  const host = match?.[1]?.toLowerCase();
  if (host === undefined) return false;
  if (host === 'localhost') return true;
  if (host.startsWith('[')) return isIpv6Loopback(host.slice(1, -1));
  const octets = host.split('.');
  // Strictly four decimal octets: a shorter or odd form might be resolved as a name, not as 127/8.
  return octets.length === 4 && octets[0] === '127' && octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
}

interface Parts {
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

/** Splits and validates `[domain/]path[:tag][@digest]`, normalising as ParseNormalizedNamed does. */
function parseParts(input: string, kind: 'reference' | 'repository'): Parts {
  const fail = (why: string, options?: KilnErrorOptions): KilnError =>
    new KilnError('REFERENCE_INVALID', `invalid ${kind} ${quote(input)}: ${why}`, options);

  if (input === '') throw fail('the name is empty');
  if (input.length > INPUT_MAX_LENGTH) throw fail(`it is ${input.length} characters long; no valid reference exceeds ${INPUT_MAX_LENGTH}`);
  if (/\s/.test(input)) throw fail('it contains whitespace');
  // Checked up front: "%" can only come from an IPv6 zone, and would otherwise surface as a confusing digest error.
  if (input.includes('%')) throw fail('"%" is not allowed: registry addresses cannot carry an IPv6 zone identifier');
  const scheme = input.indexOf('://');
  if (scheme !== -1) throw fail(`a reference has no URL scheme; drop "${input.slice(0, scheme)}://"`);
  // A bare image ID or digest would otherwise be read as a repository on Docker Hub (normalize.go rejects the ID too).
  if (IDENTIFIER_REGEXP.test(input)) throw fail('a 64-character hexadecimal string is an image ID, not a repository name');
  if (isDigest(input)) throw fail('a digest alone names no repository; write NAME@DIGEST');

  const at = input.indexOf('@');
  const namePart = at === -1 ? input : input.slice(0, at);
  let digest: Digest | undefined;
  if (at !== -1) {
    const raw = input.slice(at + 1);
    if (raw === '') throw fail('the digest after "@" is empty');
    try {
      digest = parseDigest(raw);
    } catch (err) {
      throw fail(errorMessage(err), { cause: err });
    }
  }
  if (!namePart.includes('/') && namePart.startsWith('[')) {
    throw fail('an IPv6 registry needs a repository after it, e.g. [::1]:5000/NAME');
  }

  // A ':' after the last '/' starts the tag; any earlier ':' belongs to the registry's port or IPv6 address.
  const colon = namePart.lastIndexOf(':');
  const hasTag = colon > namePart.lastIndexOf('/');
  const name = hasTag ? namePart.slice(0, colon) : namePart;
  const tag = hasTag ? namePart.slice(colon + 1) : undefined;
  if (name === '') throw fail('the repository name is empty');

  const { host, path } = splitRegistry(name);
  const hostIssue = host === undefined ? undefined : registryProblem(host);
  if (hostIssue) throw fail(hostIssue);
  const registry = host === undefined || host === LEGACY_DEFAULT_REGISTRY ? DEFAULT_REGISTRY : host;
  const pathIssue = pathProblem(path);
  if (pathIssue) throw fail(pathIssue);
  const tagIssue = tag === undefined ? undefined : tagProblem(tag);
  if (tagIssue) throw fail(tagIssue);

  // Official images live under library/ on Docker Hub only (normalize.go, splitDockerDomain).
  const repository = registry === DEFAULT_REGISTRY && !path.includes('/') ? OFFICIAL_PREFIX + path : path;
  if (repository.length > REPOSITORY_NAME_MAX_LENGTH) {
    throw fail(`the repository name is ${repository.length} characters long; the limit is ${REPOSITORY_NAME_MAX_LENGTH}`);
  }
  const parts: Parts = { registry, repository };
  if (tag !== undefined) parts.tag = tag;
  if (digest !== undefined) parts.digest = digest;
  return parts;
}

/** The first component is a registry when it has a `.` or `:` or is `localhost` (normalize.go, splitDockerDomain). */
function splitRegistry(name: string): { host: string | undefined; path: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  if (slash === -1 || !(first === 'localhost' || first.includes('.') || first.includes(':'))) {
    return { host: undefined, path: name };
  }
  return { host: first, path: name.slice(slash + 1) };
}

function registryProblem(registry: string): string | undefined {
  if (!DOMAIN_REGEXP.test(registry)) {
    if (!registry.startsWith('[') && registry.split(':').length > 2) {
      return `registry "${registry}" looks like an IPv6 address: put it in brackets, e.g. [::1]:5000`;
    }
    return `registry "${registry}" is not a valid host[:port] (letters, digits, "-" and "." or a bracketed IPv6 address)`;
  }
  const port = /:(\d+)$/.exec(registry)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    return `registry port ${port} is out of range (1-65535)`;
  }
  return undefined;
}

function pathProblem(path: string): string | undefined {
  // Checked first, as ParseNormalizedNamed does, so "Foo/bar" gets this message rather than a grammar one.
  if (path !== path.toLowerCase()) return 'repository name must be lowercase';
  if (REMOTE_NAME_REGEXP.test(path)) return undefined;
  for (const component of path.split('/')) {
    if (component === '') return `repository path "${path}" has an empty component (leading, trailing or double "/")`;
    if (!PATH_COMPONENT_REGEXP.test(component)) {
      return `repository path component "${component}" is not valid: use lowercase letters and digits, separated by ".", "_", "__" or "-"`;
    }
  }
  return `repository path "${path}" is not valid`;
}

function tagProblem(tag: string): string | undefined {
  if (tag === '') return 'the tag after ":" is empty';
  if (tag.length > TAG_MAX_LENGTH) return `the tag is ${tag.length} characters long; the limit is ${TAG_MAX_LENGTH}`;
  if (!TAG_REGEXP.test(tag)) {
    return `tag "${tag}" is not valid: use letters, digits, "_", "." and "-", not starting with "." or "-"`;
  }
  return undefined;
}

function isIpv6Loopback(address: string): boolean {
  const halves = address.split('::');
  if (halves.length > 2) return false;
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const count = head.length + tail.length;
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/.test(g))) return false;
  if (halves.length === 1 ? count !== 8 : count > 7) return false;
  const all = [...head, ...Array<string>(8 - count).fill('0'), ...tail];
  return all.every((g, i) => parseInt(g, 16) === (i === 7 ? 1 : 0));
}

/** The input for a message: JSON-quoted so control characters show, and cut short when huge. */
function quote(input: string): string {
  return JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input);
}
