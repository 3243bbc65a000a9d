import { createHash } from 'node:crypto';
import { createReadStream, type BigIntStats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { KilnError, errorMessage } from '../../oci/errors.js';

/** The stat fields that, unchanged, let a cached content digest be trusted. */
interface Fingerprint {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  mode: number;
}

interface Record extends Fingerprint {
  sha256: string;
}

interface CacheFile {
  version: 1;
  root: string;
  entries: { [relPath: string]: Record };
}

/** Files changed this recently are not persisted: a later write within the clock's granularity could go unseen. */
const RACY_WINDOW_NS = 2_000_000_000n;

/**
 * Maps a context-relative path and its stat (size, mtime, ctime, inode, mode) to the sha256 of its content, kept
 * as one JSON file per context root, so a rebuild with nothing changed costs one stat walk and no reads.
 */
export class StatCache {
  readonly file: string;
  readonly root: string;
  private readonly entries: Map<string, Record>;
  private dirty = false;
  /** Counts of the last run, for tests and progress. */
  hits = 0;
  misses = 0;

  private constructor(file: string, root: string, entries: Map<string, Record>) {
    this.file = file;
    this.root = root;
    this.entries = entries;
  }

  /** Opens (or starts) the cache of `root` in `dir`; an unreadable or foreign cache file starts empty. */
  static async open(options: { dir: string; root: string }): Promise<StatCache> {
    const root = resolve(options.root);
    const file = join(options.dir, `${createHash('sha256').update(root).digest('hex')}.json`);
    const entries = new Map<string, Record>();
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new KilnError('CONTEXT_INVALID', `cannot read stat cache ${file}: ${errorMessage(err)}`, { cause: err });
      }
    }
    if (text !== undefined) {
      // A cache is only an accelerator: a corrupt or foreign one is rebuilt rather than trusted.
      const parsed = safeParse(text);
      if (parsed && parsed.version === 1 && parsed.root === root && typeof parsed.entries === 'object' && parsed.entries) {
        for (const [k, v] of Object.entries(parsed.entries)) if (isRecord(v)) entries.set(k, v);
      }
    }
    return new StatCache(file, root, entries);
  }

  /** sha256 hex of the file at `relPath` (below the root), read only when `stat` differs from the cached one. */
  async digest(relPath: string, stat: BigIntStats): Promise<string> {
    const fp = fingerprint(stat);
    const cached = this.entries.get(relPath);
    if (cached && sameFingerprint(cached, fp)) {
      this.hits++;
      return cached.sha256;
    }
    this.misses++;
    const sha256 = await hashFile(join(this.root, relPath));
    this.remember(relPath, stat, sha256);
    return sha256;
  }

  /** Records the digest of a file at `relPath` with `stat` that was read elsewhere (as `digest` would after a miss). */
  remember(relPath: string, stat: BigIntStats, sha256: string): void {
    const now = BigInt(Date.now()) * 1_000_000n;
    if (now - stat.mtimeNs > RACY_WINDOW_NS) {
      this.entries.set(relPath, { ...fingerprint(stat), sha256 });
      this.dirty = true;
    } else if (this.entries.delete(relPath)) {
      this.dirty = true;
    }
  }

  /** Writes the cache when it changed, atomically (temp file + rename). */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true });
    const data: CacheFile = { version: 1, root: this.root, entries: Object.fromEntries(this.entries) };
    const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(data));
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new KilnError('INTERNAL', `cannot write stat cache ${this.file}: ${errorMessage(err)}`, { cause: err });
    }
    this.dirty = false;
  }
}

/** sha256 hex of a file's bytes. */
export async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

function fingerprint(st: BigIntStats): Fingerprint {
  return { size: st.size.toString(), mtimeNs: st.mtimeNs.toString(), ctimeNs: st.ctimeNs.toString(), ino: st.ino.toString(), mode: Number(st.mode) };
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino && a.mode === b.mode;
}

function safeParse(text: string): Partial<CacheFile> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? (v as Partial<CacheFile>) : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(v: unknown): v is Record {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as { [k: string]: unknown };
  return (
    typeof r.sha256 === 'string' &&
    typeof r.size === 'string' &&
    typeof r.mtimeNs === 'string' &&
    typeof r.ctimeNs === 'string' &&
    typeof r.ino === 'string' &&
    typeof r.mode === 'number'
  );
}
