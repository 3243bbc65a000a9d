import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, KilnError } from '../oci/errors.js';

/** The verifier's memory of tag-state versions, as TUF clients keep: a version, once seen, is the floor. */
export interface TrustCache {
  /** The highest tag-state version seen for `repository`, if any. */
  seenVersion(repository: string): Promise<number | undefined>;
  /** Raises the floor for `repository` to `version` (never lowers it). */
  recordVersion(repository: string, version: number): Promise<void>;
}

/** A `TrustCache` in memory (tests, and callers that keep their own state such as a long-running registry). */
export class MemoryTrustCache implements TrustCache {
  private readonly versions = new Map<string, number>();

  async seenVersion(repository: string): Promise<number | undefined> {
    return this.versions.get(repository);
  }

  async recordVersion(repository: string, version: number): Promise<void> {
    this.versions.set(repository, Math.max(version, this.versions.get(repository) ?? 0));
  }
}

/** A `TrustCache` as one small JSON file per repository under `dir` (created 0700), replaced atomically. */
export class FileTrustCache implements TrustCache {
  constructor(readonly dir: string) {}

  async seenVersion(repository: string): Promise<number | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(repository), 'utf8');
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return undefined;
      throw new KilnError('INTERNAL', `cannot read the trust cache ${this.file(repository)}: ${errorMessage(err)}`, { cause: err });
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as Record<string, unknown> | null)?.version;
    } catch {
      version = undefined;
    }
    if (!Number.isSafeInteger(version)) throw new KilnError('INTERNAL', `trust cache ${this.file(repository)} is corrupt: delete it to start over`);
    return version as number;
  }

  async recordVersion(repository: string, version: number): Promise<void> {
    const current = await this.seenVersion(repository);
    if (current !== undefined && current >= version) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.${randomBytes(6).toString('hex')}.tmp`);
    await writeFile(tmp, `${JSON.stringify({ repository, version })}\n`, { mode: 0o600 });
    try {
      await rename(tmp, this.file(repository));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  private file(repository: string): string {
    return join(this.dir, `${createHash('sha256').update(repository).digest('hex').slice(0, 32)}.json`);
  }
}

/** Where the CLI keeps the trust cache: `$KILN_TRUST_DIR`, else `$XDG_DATA_HOME/kiln/trust`, else `~/.local/share/kiln/trust`. */
export function defaultTrustDir(env: NodeJS.ProcessEnv, home: string): string {
  if (env.KILN_TRUST_DIR) return env.KILN_TRUST_DIR;
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'kiln', 'trust');
}
