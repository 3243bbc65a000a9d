import { compileGlob } from './auth/glob.js';
import type { TagRow } from './db/gc-store.js';

/** One `retention` rule of the configuration; the first rule whose glob matches a repository applies. */
export interface RetentionRule {
  /** Repository glob, as in `access` and `policies`: `*` within a path segment, `**` across segments. */
  repository: string;
  /** Keep this many ordinary tags, most recently written first; older ones are deleted. */
  keepLast?: number | undefined;
  /** Untagged manifests older than this (ms) are deleted (never sooner than the GC grace period). */
  deleteUntaggedAfterMs?: number | undefined;
}

/**
 * Tags of the referrers tag schema and cosign (`sha256-<hex>`, `sha256-<hex>.sig|.att|.sbom`): they name
 * the manifest they belong to, so keepLast neither counts nor deletes them.
 */
const REFERRER_TAG = /^(sha256|sha512)-([0-9a-f]{64,128})(?:\.[A-Za-z0-9_-]+)?$/;

/** True for a signature, attestation or referrers-fallback tag (`sha256-<hex>[.suffix]`). */
export function isReferrerTag(tag: string): boolean {
  return REFERRER_TAG.test(tag);
}

/** `algorithm:hex` named by a referrer tag (the hex may be truncated to 64 characters), or undefined. */
export function referrerTagSubject(tag: string): string | undefined {
  const m = REFERRER_TAG.exec(tag);
  return m ? `${m[1]}:${m[2]}` : undefined;
}

/** True when the whole of `repository` matches `glob` (`ci/**` matches every repository under `ci/`). */
export function matchesRepository(glob: string, repository: string): boolean {
  return globRegExp(glob).test(repository);
}

/** The first rule whose glob matches `repository`. */
export function retentionRuleFor(rules: readonly RetentionRule[], repository: string): RetentionRule | undefined {
  return rules.find((rule) => matchesRepository(rule.repository, repository));
}

/** Ordinary tags beyond the `keepLast` most recently written (ties broken by name), i.e. the ones to delete. */
export function tagsBeyondKeepLast(tags: readonly TagRow[], keepLast: number): TagRow[] {
  const ordinary = tags.filter((t) => !isReferrerTag(t.tag));
  ordinary.sort((a, b) => b.updatedAt - a.updatedAt || (a.tag < b.tag ? -1 : a.tag > b.tag ? 1 : 0));
  return ordinary.slice(keepLast);
}

const compiled = new Map<string, RegExp>();

function globRegExp(glob: string): RegExp {
  let re = compiled.get(glob);
  if (!re) compiled.set(glob, (re = compileGlob(glob)));
  return re;
}
