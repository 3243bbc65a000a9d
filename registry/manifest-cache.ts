import type { Digest } from '../oci/digest.js';

/** What a manifest GET needs to answer without the database. */
export interface CachedManifest {
  digest: Digest;
  mediaType: string;
  bytes: Buffer;
}

/** Options of `ManifestCache`. */
export interface ManifestCacheOptions {
  /** Most entries kept (default 1000). */
  maxEntries?: number;
  /** Most manifest bytes kept (default 64 MiB). */
  maxBytes?: number;
}

/**
 * In-memory cache of manifests by `repository` + reference (tag or digest) for hot GETs. Valid for
 * one process only: every manifest or tag write in a repository drops that repository's entries.
 */
export class ManifestCache {
  private readonly entries = new Map<string, CachedManifest>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private bytes = 0;
  /** Bumped per repository on invalidation, so a read that raced a write cannot store a stale entry. */
  private readonly generations = new Map<string, number>();
  /** Bumped by `clear`: part of every repository's generation. */
  private epoch = 0;

  constructor(options: ManifestCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 1000;
    this.maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  }

  /** The cached manifest, refreshed as most recently used. */
  get(repository: string, reference: string): CachedManifest | undefined {
    const key = keyOf(repository, reference);
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  /** The repository's generation, to be passed back to `set` after reading from the database. */
  generation(repository: string): number {
    return this.epoch + (this.generations.get(repository) ?? 0);
  }

  /** Stores an entry read at `generation`; ignored when the repository changed since. */
  set(repository: string, reference: string, value: CachedManifest, generation: number): void {
    if (generation !== this.generation(repository) || value.bytes.length > this.maxBytes / 16) return;
    const key = keyOf(repository, reference);
    this.drop(key);
    this.entries.set(key, value);
    this.bytes += value.bytes.length;
    while (this.entries.size > this.maxEntries || this.bytes > this.maxBytes) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.drop(oldest.value);
    }
  }

  /** Forgets every entry of `repository` (after a manifest PUT or DELETE, or a tag DELETE). */
  invalidate(repository: string): void {
    this.generations.set(repository, (this.generations.get(repository) ?? 0) + 1);
    const prefix = keyOf(repository, '');
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.drop(key);
  }

  /** Forgets every entry (after garbage collection removed tags or manifests, possibly in another process). */
  clear(): void {
    this.epoch++;
    this.entries.clear();
    this.bytes = 0;
  }

  private drop(key: string): void {
    const old = this.entries.get(key);
    if (!old) return;
    this.bytes -= old.bytes.length;
    this.entries.delete(key);
  }
}

// A newline cannot occur in a repository name or a reference, so keys of different repositories never collide.
function keyOf(repository: string, reference: string): string {
  return `${repository}\n${reference}`;
}
