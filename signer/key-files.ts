import { randomBytes } from 'node:crypto';
import { link, lstat, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { errorMessage, KilnError } from '../oci/errors.js';
import type { KeyPairPem } from './keys.js';

/** Where `writeKeyPair` put the two files. */
export interface KeyPairFiles {
  privateKeyPath: string;
  publicKeyPath: string;
}

/**
 * Writes `PREFIX.key` (mode 0600) and `PREFIX.pub` (0644), each to a temp file first and then linked
 * into place, so a file is either absent or complete. Existing files are refused unless `force`.
 */
export async function writeKeyPair(options: { prefix: string; keys: KeyPairPem; force?: boolean }): Promise<KeyPairFiles> {
  const files: KeyPairFiles = { privateKeyPath: `${options.prefix}.key`, publicKeyPath: `${options.prefix}.pub` };
  if (!options.force) {
    for (const path of [files.privateKeyPath, files.publicKeyPath]) {
      if (await exists(path)) {
        throw new KilnError('USAGE', `${path} already exists: not overwriting a key`, { hint: 'pass --force to replace it, or choose another --output-key-prefix' });
      }
    }
  }
  await writeAtomic(files.privateKeyPath, options.keys.privateKeyPem, 0o600, options.force === true);
  await writeAtomic(files.publicKeyPath, options.keys.publicKeyPem, 0o644, options.force === true);
  return files;
}

/** Reads a key file, as KEY_INVALID naming the file when it cannot be read. */
export async function readKeyFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new KilnError('KEY_INVALID', `cannot read key ${path}: ${why}`, { cause: err });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false;
    throw err;
  }
}

/** Temp file in the destination's directory (same filesystem), created with its final mode, then moved in. */
async function writeAtomic(path: string, text: string, mode: number, replace: boolean): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never follow or reuse an existing file; the mode applies from creation, so the key is never readable by others.
  await writeFile(tmp, text, { mode, flag: 'wx' });
  try {
    if (replace) await rename(tmp, path);
    else {
      // link() fails with EEXIST instead of replacing: a file that appeared since the check is not overwritten.
      await link(tmp, path);
      await unlink(tmp);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    if ((err as { code?: string }).code === 'EEXIST') {
      throw new KilnError('USAGE', `${path} already exists: not overwriting a key`, { hint: 'pass --force to replace it', cause: err });
    }
    throw new KilnError('KEY_INVALID', `cannot write ${path}: ${errorMessage(err)}`, { cause: err });
  }
}
