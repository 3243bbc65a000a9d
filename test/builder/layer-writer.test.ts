import { execFileSync } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeDirectoryLayer } from '../../builder/layer-writer.js';
import { digestOf } from '../../oci/digest.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-dirlayer-test-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeDirectoryLayer', () => {
  it('writes a reproducible root-owned layer stamped with the epoch, and cleans up', async () => {
    const tree = join(root, 'tree');
    await mkdir(join(tree, 'etc'), { recursive: true });
    await writeFile(join(tree, 'etc/os-release'), 'ID=kiln\n');
    const a = await writeDirectoryLayer({ directory: tree, epoch: 1_700_000_000 });
    const b = await writeDirectoryLayer({ directory: tree, epoch: 1_700_000_000 });
    expect(a.digest).toBe(b.digest);
    expect(digestOf(await readFile(a.path))).toBe(a.digest);
    expect(digestOf(gunzipSync(await readFile(a.path)))).toBe(a.diffId);
    const listing = execFileSync('sh', ['-c', `gzip -dc '${a.path}' | tar -tv --numeric-owner --full-time`]).toString();
    expect(listing).toMatch(/^drwx\S+ 0\/0 +0 2023-11-14 22:13:20 etc\/\n-rw\S+ 0\/0 +8 2023-11-14 22:13:20 etc\/os-release\n$/);
    await a.cleanup();
    await b.cleanup();
    await expect(access(a.path)).rejects.toThrow();
  });
});
