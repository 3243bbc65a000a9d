/**
 * The image-reference grammar of distribution/reference (regexp.go), composed from named pieces so each line
 * reads like the grammar it implements:
 *
 *   reference      := name [ ":" tag ] [ "@" digest ]
 *   name           := [ domain "/" ] remote-name
 *   domain         := host [ ":" port-number ]
 *   host           := domain-name | "[" IPv6address "]"
 *   remote-name    := path-component [ "/" path-component ]*
 *   path-component := alpha-numeric [ separator alpha-numeric ]*     separator := [._] | "__" | "-"+
 *   tag            := [\w][\w.-]{0,127}
 */

const anchored = (source: string): RegExp => new RegExp(`^${source}$`);

const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REMOTE_NAME = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
// Same language as upstream's `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, written as alphanumeric runs
// joined by dash runs so that a backtracking engine stays linear on hostile input.
const DOMAIN_COMPONENT = '[a-zA-Z0-9]+(?:-+[a-zA-Z0-9]+)*';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
// Compressed or full IPv6 only: zone identifiers (RFC 6874) and IPv4-mapped forms are excluded, as upstream does.
const IPV6_ADDRESS = '\\[[a-fA-F0-9:]+\\]';
const DOMAIN_AND_PORT = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
// The syntactic digest shape only; reference.ts then validates the algorithm and length with parseDigest.
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const NAME = `(?:${DOMAIN_AND_PORT}/)?${REMOTE_NAME}`;

/** Registry host with optional port (`domain` above); the port range is checked separately. */
export const DOMAIN_REGEXP = anchored(DOMAIN_AND_PORT);
/** One path component of a repository name. */
export const PATH_COMPONENT_REGEXP = anchored(PATH_COMPONENT);
/** A repository path without registry (`remote-name`); also the OCI Distribution spec's `<name>` rule. */
export const REMOTE_NAME_REGEXP = anchored(REMOTE_NAME);
/** A tag: a word character, then up to 127 word characters, dots or dashes. */
export const TAG_REGEXP = anchored(TAG);
/** A full name without normalisation; groups: 1 domain (when present), 2 remote name. */
export const NAME_REGEXP = anchored(`(?:(${DOMAIN_AND_PORT})/)?(${REMOTE_NAME})`);
/** A full reference without normalisation; groups: 1 name, 2 tag, 3 digest. */
export const REFERENCE_REGEXP = anchored(`(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?`);
/** A bare 64-hex image ID, which a repository name may not be (it would be ambiguous). */
export const IDENTIFIER_REGEXP = /^[a-f0-9]{64}$/;

/** Longest repository path, registry excluded (distribution/reference `RepositoryNameTotalLengthMax`). */
export const REPOSITORY_NAME_MAX_LENGTH = 255;
/** Longest tag, as the tag grammar allows. */
export const TAG_MAX_LENGTH = 128;
