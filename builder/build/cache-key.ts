import { createHash } from 'node:crypto';

/**
 * A step's cache key: sha256 over the parent's key and the step's canonical description. JSON of an array
 * keeps field boundaries unambiguous; the description holds only expanded, resolved values (never secrets).
 */
export function cacheKey(parent: string, step: unknown): string {
  return createHash('sha256').update(parent).update('\0').update(JSON.stringify(step)).digest('hex');
}

/** Bumped when the meaning of cached results changes, so old entries stop matching. */
export const CACHE_VERSION = 'kiln-build-cache-v1';
