import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entriesFromDirectory } from '../../../builder/layer/from-directory.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-fromdir-test-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('entriesFromDirectory', () => {
  it('lists the tree in layer order with lstat metadata, symlinks unfollowed', async () => {
    await mkdir(join(root, 'b/c'), { recursive: true });
    await writeFile(join(root, 'b/c/file'), 'hello');
    await writeFile(join(root, 'a.txt'), 'x');
    await writeFile(join(root, 'b.txt'), 'y');
    await symlink('../b.txt', join(root, 'b/up'));
    await chmod(join(root, 'b/c/file'), 0o4750);
    await utimes(join(root, 'b/c/file'), 1_234_567_890, 1_234_567_890.9);
    const entries = await entriesFromDirectory(root);
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual([
      'file:a.txt',
      'directory:b',
      'directory:b/c',
      'file:b/c/file',
      'symlink:b/up',
      'file:b.txt',
    ]);
    const file = entries[3];
    expect(file).toMatchObject({ type: 'file', source: join(root, 'b/c/file'), size: 5, mode: 0o4750, mtime: 1_234_567_890 });
    expect(entries[4]).toMatchObject({ type: 'symlink', linkname: '../b.txt' });
  });

  it('turns files sharing an inode into hard links to the first in order', async () => {
    await mkdir(join(root, 'z'));
    await writeFile(join(root, 'z/orig'), 'data');
    await link(join(root, 'z/orig'), join(root, 'a-link'));
    await link(join(root, 'z/orig'), join(root, 'z/p'));
    const entries = await entriesFromDirectory(root);
    expect(entries.map((e) => [e.path, e.type, 'linkname' in e ? e.linkname : undefined])).toEqual([
      ['a-link', 'file', undefined],
      ['z', 'directory', undefined],
      ['z/orig', 'hardlink', 'a-link'],
      ['z/p', 'hardlink', 'a-link'],
    ]);
  });

  it('puts the tree under a prefix and refuses prefixes with ".."', async () => {
    await writeFile(join(root, 'f'), '');
    expect((await entriesFromDirectory(root, { prefix: '/app/./src/' })).map((e) => e.path)).toEqual(['app/src/f']);
    await expect(entriesFromDirectory(root, { prefix: '../x' })).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('refuses a FIFO, naming it', async () => {
    execFileSync('mkfifo', [join(root, 'pipe')]);
    await expect(entriesFromDirectory(root)).rejects.toThrow(/pipe is a FIFO/);
  });
});
