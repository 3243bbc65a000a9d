import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A private temp directory (mode 0700) an archive is unpacked into or assembled in. */
export async function makeWorkDir(kind: string, parent?: string): Promise<string> {
  return mkdtemp(join(parent ?? tmpdir(), `kiln-${kind}-`));
}

/** Removes a work directory and everything in it. */
export async function removeWorkDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
