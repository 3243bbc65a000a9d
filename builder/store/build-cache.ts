import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../../oci/digest.js';
import { isNotFound, readdirOrEmpty } from '../../oci/content/fs-blob-store.js';

/** What a cached step produced: a layer, or nothing (a RUN that changed no file). */
export interface CachedStep {
  layer?: { digest: Digest; size: number; mediaType: string; diffId: Digest };
}

/** Cache keys are sha256 hex strings computed by the build plan. */
const KEY = /^[a-f0-9]{64}$/;

/**
 * The build cache index: step cache key → the layer it produced. One small JSON file per key (written
 * temp + rename), so concurrent builds and a crash never leave a half-written entry; the layer blobs
 * live in the local store's blob store.
 */
export class BuildCache {
  constructor(readonly dir: string) {}

  /** The cached result of `key`, or undefined (also for an entry that no longer parses). */
  async get(key: string): Promise<CachedStep | undefined> {
    if (!KEY.test(key)) throw new Error(`invalid cache key ${key}`);
    let text: string;
    try {
      text = await readFile(join(this.dir, key.slice(0, 2), `${key}.json`), 'utf8');
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return parseEntry(text);
  }

  /** Records the result of `key`. */
  async put(key: string, step: CachedStep): Promise<void> {
    if (!KEY.test(key)) throw new Error(`invalid cache key ${key}`);
    const dir = join(this.dir, key.slice(0, 2));
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${key}.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, JSON.stringify({ version: 1, ...step }));
    await rename(tmp, join(dir, `${key}.json`));
  }

  /** Blob digests the cache refers to (kept alive by a prune that spares the cache). */
  async referencedBlobs(): Promise<Set<Digest>> {
    const out = new Set<Digest>();
    for (const shard of await readdirOrEmpty(this.dir)) {
      for (const file of await readdirOrEmpty(join(this.dir, shard))) {
        if (!file.endsWith('.json')) continue;
        const entry = parseEntry(await readFile(join(this.dir, shard, file), 'utf8').catch(() => ''));
        if (entry?.layer) out.add(entry.layer.digest);
      }
    }
    return out;
  }

  /** Whether the cache has no entry at all (then no lookup can hit). */
  async isEmpty(): Promise<boolean> {
    for (const shard of await readdirOrEmpty(this.dir)) {
      if ((await readdirOrEmpty(join(this.dir, shard))).some((f) => f.endsWith('.json'))) return false;
    }
    return true;
  }

  /** Forgets every entry; returns how many there were. */
  async clear(): Promise<number> {
    let count = 0;
    for (const shard of await readdirOrEmpty(this.dir)) count += (await readdirOrEmpty(join(this.dir, shard))).length;
    await rm(this.dir, { recursive: true, force: true });
    return count;
  }
}

function parseEntry(text: string): CachedStep | undefined {
  try {
    const doc = JSON.parse(text) as { version?: number; layer?: CachedStep['layer'] };
    if (doc.version !== 1) return undefined;
    const layer = doc.layer;
    if (layer === undefined) return {};
    if (!isDigest(layer.digest) || !isDigest(layer.diffId) || typeof layer.size !== 'number' || typeof layer.mediaType !== 'string') return undefined;
    return { layer };
  } catch {
    return undefined;
  }
}
