import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../oci/errors.js';

/** Name of the lock file in a data directory. */
export const LOCK_FILE = 'kiln-serve.pid';

/**
 * Claims a data directory for this process: a second server would purge the first one's uploads and
 * temp files at startup. A lock left by a process that no longer runs (kill -9) is taken over.
 * Returns the release function.
 */
export async function lockDataDir(dir: string): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readOwner(path), 10);
    if (Number.isSafeInteger(owner) && owner !== process.pid && isRunning(owner)) {
      throw new KilnError('USAGE', `data directory ${dir} is in use by another kiln serve (pid ${owner})`, {
        hint: `stop that server or use another --data directory; if no server runs, remove ${path}`,
      });
    }
    // Stale: its owner is gone (or it is unreadable, i.e. half-written by a process that died).
    await rm(path, { force: true });
  }
  throw new KilnError('USAGE', `could not lock data directory ${dir}: another process keeps creating ${LOCK_FILE}`);
}

/** The pid text of the lock; empty when it vanished meanwhile (its owner just released it). */
async function readOwner(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return '';
    throw err;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as { code?: string }).code === 'EPERM';
  }
}
