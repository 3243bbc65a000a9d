import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirePeer } from '../../support/peers.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { entriesFromDirectory } from '../../../builder/layer/from-directory.js';
import { writeLayer } from '../../../builder/layer/writer.js';
import { applyLayer } from '../../../builder/rootfs/apply-layer.js';
import { zstdStored } from '../../support/random-image.js';
import { craftTar, writeTar, type CraftEntry } from './craft-tar.js';
import { snapshotTree } from './tree-snapshot.js';

const asRoot = process.getuid?.() === 0;
// getfattr/setfattr (Debian `attr`) are a requirement of the builder: missing, the tests that need them fail with the hint.
const hasAttr = spawnSync('setfattr', ['--version']).status === 0;

let base: string;
let rootfs: string;
let outside: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-apply-test-'));
  // The rootfs sits two levels down so that "../../x" escapes would land in `base`, where we look for them.
  rootfs = join(base, 'a', 'b', 'rootfs');
  outside = join(base, 'a');
  await mkdir(rootfs, { recursive: true });
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function apply(entries: CraftEntry[], limits?: { maxBytes?: number; maxEntries?: number }): Promise<{ entries: number; bytes: number }> {
  const blob = await writeTar(join(base, `layer-${Math.random().toString(36).slice(2)}.tar.gz`), entries);
  return applyLayer({ rootfs, blob, name: 'sha256:test', ...(limits ? { limits } : {}) });
}

/** Every path under `dir`, with a type mark ('/' dir, '@' link, '' file). */
async function tree(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const st = await lstat(join(dir, name));
    const path = rel ? `${rel}/${name}` : name;
    if (st.isDirectory()) out.push(`${path}/`, ...(await tree(join(dir, name), path)));
    else out.push(st.isSymbolicLink() ? `${path}@` : path);
  }
  return out;
}

describe('applyLayer: extraction', () => {
  it('extracts files, dirs, symlinks, hard links with modes, owners and mtimes (gzip, plain, zstd)', async () => {
    const entries: CraftEntry[] = [
      { name: './', type: 'directory' },
      { name: 'usr/', type: 'directory', mode: 0o755, mtime: 1_000 },
      { name: 'usr/bin/', type: 'directory', mode: 0o711, mtime: 2_000 },
      { name: 'usr/bin/su', data: 'ELF', mode: 0o4755, uid: 12, gid: 34, mtime: 3_000 },
      { name: 'usr/bin/su2', type: 'link', linkname: 'usr/bin/su' },
      { name: 'usr/sbin', type: 'symlink', linkname: 'bin', mtime: 4_000 },
    ];
    for (const compression of ['gzip', 'none', 'zstd'] as const) {
      await rm(rootfs, { recursive: true });
      await mkdir(rootfs);
      const raw = await craftTar(entries);
      const blob = join(base, `layer.${compression}`);
      await writeFile(blob, compression === 'zstd' ? zstdStored(raw) : compression === 'gzip' ? execFileSync('gzip', ['-c'], { input: raw }) : raw);
      const result = await applyLayer({ rootfs, blob, name: compression });
      expect(result).toEqual({ entries: 6, bytes: 3 });
      expect(await tree(rootfs)).toEqual(['usr/', 'usr/bin/', 'usr/bin/su', 'usr/bin/su2', 'usr/sbin@']);
      const su = await stat(join(rootfs, 'usr/bin/su'));
      expect(su.mode & 0o7777).toBe(0o4755);
      expect(su.mtimeMs).toBe(3_000_000);
      expect(su.nlink).toBe(2);
      if (asRoot) expect([su.uid, su.gid]).toEqual([12, 34]);
      expect((await stat(join(rootfs, 'usr/bin'))).mode & 0o7777).toBe(0o711);
      expect((await stat(join(rootfs, 'usr/bin'))).mtimeMs).toBe(2_000_000);
      expect((await lstat(join(rootfs, 'usr/sbin'))).mtimeMs).toBe(4_000_000);
      expect(await readlink(join(rootfs, 'usr/sbin'))).toBe('bin');
    }
  });

  it('replaces what lower layers had: file over dir, dir over file, symlink over file, file over symlink', async () => {
    await mkdir(join(rootfs, 'was-dir/sub'), { recursive: true });
    await writeFile(join(rootfs, 'was-dir/sub/f'), 'old');
    await writeFile(join(rootfs, 'was-file'), 'old');
    await writeFile(join(rootfs, 'was-file2'), 'old');
    await writeFile(join(outside, 'victim'), 'keep');
    await symlink(join(outside, 'victim'), join(rootfs, 'was-link'));
    await apply([
      { name: 'was-dir', data: 'now a file' },
      { name: 'was-file/', type: 'directory' },
      { name: 'was-file/inner', data: 'in' },
      { name: 'was-file2', type: 'symlink', linkname: 'was-dir' },
      { name: 'was-link', data: 'replaced the link, not its target' },
    ]);
    expect(await readFile(join(rootfs, 'was-dir'), 'utf8')).toBe('now a file');
    expect(await readFile(join(rootfs, 'was-file/inner'), 'utf8')).toBe('in');
    expect(await readlink(join(rootfs, 'was-file2'))).toBe('was-dir');
    expect((await lstat(join(rootfs, 'was-link'))).isFile()).toBe(true);
    expect(await readFile(join(outside, 'victim'), 'utf8')).toBe('keep');
  });

  it('follows a usrmerge symlink in parents: bin -> usr/bin then bin/sh lands at usr/bin/sh', async () => {
    await apply([
      { name: 'usr/', type: 'directory' },
      { name: 'usr/bin/', type: 'directory' },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
      { name: 'bin/sh', data: '#!' },
      { name: 'lib', type: 'symlink', linkname: '/usr/lib' },
      { name: 'lib/libc.so', data: 'so' },
    ]);
    expect(await tree(rootfs)).toEqual(['bin@', 'lib@', 'usr/', 'usr/bin/', 'usr/bin/sh', 'usr/lib/', 'usr/lib/libc.so']);
  });

  it('makes FIFOs with mkfifo', async () => {
    await apply([{ name: 'run/initctl', type: 'fifo', mode: 0o600 }]);
    const st = await lstat(join(rootfs, 'run/initctl'));
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it.skipIf(!asRoot)('sets security.capability and user xattrs, skipping overlay ones', async () => {
    requirePeer('setfattr', 'attr');
    const src = join(base, 'ping');
    await writeFile(src, 'ELF');
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const layer = await writeLayer({
      entries: [
        { type: 'file', path: 'ping', source: src, size: 3, mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: { 'security.capability': cap, 'user.note': Buffer.from([0, 255]) } },
        { type: 'directory', path: 'd', mode: 0o755, uid: 0, gid: 0, mtime: 0, xattrs: { 'trusted.overlay.opaque': Buffer.from('y') } },
      ],
      epoch: 0,
      dir: base,
    });
    await applyLayer({ rootfs, blob: layer.path, name: 'xattrs' });
    const dump = execFileSync('getfattr', ['-R', '-d', '-m', '-', '-e', 'hex', '--absolute-names', rootfs]).toString();
    expect(dump).toContain(`security.capability=0x${cap.toString('hex')}`);
    expect(dump).toContain('user.note=0x00ff');
    expect(dump).not.toContain('overlay');
  });
});

describe('applyLayer: whiteouts', () => {
  beforeEach(async () => {
    await mkdir(join(rootfs, 'etc/conf.d'), { recursive: true });
    await writeFile(join(rootfs, 'etc/conf.d/old'), '');
    await writeFile(join(rootfs, 'etc/keep'), '');
    await mkdir(join(rootfs, 'var/cache/sub'), { recursive: true });
    await writeFile(join(rootfs, 'var/cache/sub/old'), '');
    await writeFile(join(rootfs, 'var/cache/old'), '');
  });

  it('deletes files and whole directories named by .wh. entries, and not the marker itself', async () => {
    await apply([{ name: 'etc/.wh.conf.d' }, { name: 'etc/.wh.missing' }, { name: 'nowhere/.wh.x' }]);
    expect(await tree(rootfs)).toEqual(['etc/', 'etc/keep', 'var/', 'var/cache/', 'var/cache/old', 'var/cache/sub/', 'var/cache/sub/old']);
  });

  it('hides lower content of an opaque dir but keeps what the layer adds, marker first or last', async () => {
    const added: CraftEntry[] = [
      { name: 'var/cache/', type: 'directory' },
      { name: 'var/cache/new', data: 'n' },
      { name: 'var/cache/sub/', type: 'directory' },
      { name: 'var/cache/sub/new2', data: 'n' },
    ];
    const marker: CraftEntry = { name: 'var/cache/.wh..wh..opq', mode: 0 };
    for (const order of [[marker, ...added], [...added, marker]]) {
      await rm(join(rootfs, 'var/cache'), { recursive: true });
      await mkdir(join(rootfs, 'var/cache/sub'), { recursive: true });
      await writeFile(join(rootfs, 'var/cache/sub/old'), '');
      await writeFile(join(rootfs, 'var/cache/old'), '');
      await apply(order);
      expect(await tree(join(rootfs, 'var'))).toEqual(['cache/', 'cache/new', 'cache/sub/', 'cache/sub/new2']);
      expect(await readdir(join(rootfs, 'etc/conf.d'))).toEqual(['old']);
    }
  });

  it('does not let a whiteout delete what the same layer adds, in either order', async () => {
    await apply([{ name: 'etc/keep2', data: 'new' }, { name: 'etc/.wh.keep2' }, { name: 'etc/.wh.keep' }]);
    expect(await readdir(join(rootfs, 'etc'))).toEqual(['conf.d', 'keep2']);
  });
});

describe('applyLayer: hostile layers', () => {
  const hostile: Array<[string, CraftEntry[], RegExp]> = [
    ['a ".." member', [{ name: '../x', data: 'evil' }], /entry "\.\.\/x" contains "\.\."/],
    ['an absolute member', [{ name: '/etc/x', data: 'evil' }], /entry "\/etc\/x" has an absolute path/],
    ['a deep ".." member', [{ name: 'a/../../x', data: 'evil' }], /contains "\.\."/],
    [
      'a symlink parent that climbs out',
      [{ name: 'a', type: 'symlink', linkname: '../../..' }, { name: 'a/x', data: 'evil' }],
      /entry "a\/x" climbs above the root/,
    ],
    [
      'a chain of symlinks that climbs out',
      [{ name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '../..' }, { name: 'l', type: 'symlink', linkname: 'd/up' }, { name: 'l/x', data: 'evil' }],
      /entry "l\/x" climbs above the root/,
    ],
    ['a hard link out of the root', [{ name: 'pw', type: 'link', linkname: '../../etc/passwd' }], /entry "pw" contains "\.\."/],
    ['a hard link to an absolute path', [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }], /entry "pw" has an absolute path/],
    ['a hard link to a missing file', [{ name: 'pw', type: 'link', linkname: 'etc/passwd' }], /entry "pw" is a hard link to "etc\/passwd", which does not exist/],
    ['a hard link through an escaping symlink', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'pw', type: 'link', linkname: 'up/victim' }], /climbs above the root/],
    ['a character device', [{ name: 'dev/mem', type: 'character-device' }], /entry "dev\/mem" is a character device/],
    ['a block device', [{ name: 'dev/sda', type: 'block-device' }], /entry "dev\/sda" is a block device/],
    ['a whiteout of ".."', [{ name: 'etc/.wh...' }], /whiteout of no valid name/],
    ['a symlink loop', [{ name: 'l1', type: 'symlink', linkname: 'l2' }, { name: 'l2', type: 'symlink', linkname: 'l1' }, { name: 'l1/x', data: '' }], /more than 40 symlinks/],
  ];
  for (const [what, entries, message] of hostile) {
    it(`refuses ${what} with UNSAFE_PATH and writes nothing outside the root`, async () => {
      await writeFile(join(outside, 'victim'), 'keep');
      const before = await tree(base);
      const err = await apply(entries).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'UNSAFE_PATH' });
      expect((err as Error).message).toMatch(/^layer sha256:test: /);
      expect((err as Error).message).toMatch(message);
      const after = (await tree(base)).filter((p) => !p.startsWith('a/b/rootfs/') && !p.startsWith('layer-'));
      expect(after).toEqual(before.filter((p) => !p.startsWith('a/b/rootfs/')));
      expect(await readFile(join(outside, 'victim'), 'utf8')).toBe('keep');
    });
  }

  it('does not follow a parent swapped for a symlink when finishing directories, opaque dirs and xattrs', async () => {
    await mkdir(join(outside, 'sub'), { mode: 0o755 });
    await writeFile(join(outside, 'sub', 'victim'), 'keep');
    await chmod(join(outside, 'sub'), 0o755);
    await apply([
      { name: 'd/', type: 'directory' },
      { name: 'd/sub/', type: 'directory', mode: 0o777 },
      { name: 'd/sub/.wh..wh..opq' },
      { name: 'd/sub/f', data: 'x', pax: { 'SCHILY.xattr.user.evil': 'y' } },
      { name: 'g', data: 'x', pax: { 'SCHILY.xattr.user.evil': 'y' } },
      { name: 'g', type: 'symlink', linkname: join(outside, 'sub', 'victim') },
      // Replaces the directory d (and what the layer put in it) with a link to outside the root.
      { name: 'd', type: 'symlink', linkname: outside },
    ]);
    expect((await stat(join(outside, 'sub'))).mode & 0o777).toBe(0o755);
    expect(await readFile(join(outside, 'sub', 'victim'), 'utf8')).toBe('keep');
    expect(await readdir(join(outside, 'sub'))).toEqual(['victim']);
    expect(await readlink(join(rootfs, 'd'))).toBe(outside);
    requirePeer('getfattr', 'attr');
    expect(spawnSync('getfattr', ['-d', join(outside, 'sub', 'victim')]).stdout.toString()).not.toContain('evil');
  });

  it('re-roots an absolute symlink: a -> / then a/etc/x lands inside the root', async () => {
    await apply([{ name: 'a', type: 'symlink', linkname: '/' }, { name: 'a/etc/x', data: 'inside' }]);
    expect(await readFile(join(rootfs, 'etc/x'), 'utf8')).toBe('inside');
  });

  it('stops size bombs: too many entries or too many bytes → TOO_LARGE', async () => {
    const many = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, data: 'x' }));
    await expect(apply(many, { maxEntries: 10 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(apply([{ name: 'big', data: Buffer.alloc(4096) }], { maxBytes: 1000 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(lstat(join(rootfs, 'big'))).rejects.toThrow();
  });

  it('reads the padding after the end of the tar, counting it toward the byte budget', async () => {
    const raw = Buffer.concat([await craftTar([{ name: 'f', data: 'x' }]), Buffer.alloc(3 * 1024 * 1024)]);
    await writeFile(join(base, 'padded.tar'), raw);
    expect(await applyLayer({ rootfs, blob: join(base, 'padded.tar'), name: 'padded' })).toEqual({ entries: 1, bytes: 1 });
    await expect(applyLayer({ rootfs, blob: join(base, 'padded.tar'), name: 'padded', limits: { maxBytes: 1024 * 1024 } })).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
    await expect(applyLayer({ rootfs, blob: join(base, 'missing.tar'), name: 'missing' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reports a truncated or corrupt blob as VALIDATION', async () => {
    const raw = await craftTar([{ name: 'f', data: Buffer.alloc(2000, 1) }]);
    await writeFile(join(base, 'cut.tar'), raw.subarray(0, 1024));
    await expect(applyLayer({ rootfs, blob: join(base, 'cut.tar'), name: 'cut' })).rejects.toMatchObject({ code: 'VALIDATION' });
    const bad = Buffer.from(raw);
    bad[10] = 0x41;
    await writeFile(join(base, 'bad.tar'), bad);
    await expect(applyLayer({ rootfs, blob: join(base, 'bad.tar'), name: 'bad' })).rejects.toThrow(/bad checksum/);
  });
});

describe('applyLayer: round trips', () => {
  /** A tree exercising long names (ustar prefix and PAX), non-ASCII, hard links, setuid and a FIFO. */
  async function makeTree(dir: string): Promise<void> {
    const deep = join(dir, ...Array.from({ length: 14 }, (_, i) => `level-${i}-directory`));
    await mkdir(deep, { recursive: true });
    await writeFile(join(deep, 'leaf.txt'), 'deep');
    await writeFile(join(dir, `${'n'.repeat(140)}.txt`), 'long');
    await writeFile(join(dir, 'café ☕'), 'unicode');
    await writeFile(join(dir, 'suid'), '#!/bin/sh');
    await chmod(join(dir, 'suid'), 0o4755);
    await writeFile(join(dir, 'empty'), '');
    await link(join(dir, 'suid'), join(dir, 'suid-link'));
    await symlink(`../${'t'.repeat(180)}`, join(dir, 'far-link'));
    await mkdir(join(dir, 'locked'));
    await writeFile(join(dir, 'locked/inside'), 'x');
    await chmod(join(dir, 'locked'), 0o500);
  }

  it('applies what GNU tar writes (gnu and posix formats) to the same tree', async () => {
    const src = join(base, 'src');
    await mkdir(src);
    await makeTree(src);
    execFileSync('mkfifo', ['-m', '640', join(src, 'pipe')]);
    const want = await snapshotTree(src);
    for (const format of ['gnu', 'posix']) {
      await rm(rootfs, { recursive: true, force: true });
      await mkdir(rootfs);
      const blob = join(base, `gnu-${format}.tar.gz`);
      execFileSync('tar', ['-C', src, `--format=${format}`, '--numeric-owner', '-czf', blob, '.']);
      await applyLayer({ rootfs, blob, name: format });
      expect(await snapshotTree(rootfs)).toEqual(want);
    }
  });

  it.skipIf(!asRoot)('keeps owners too big for ustar fields (PAX uid/gid records)', async () => {
    const src = join(base, 'f');
    await writeFile(src, 'x');
    const layer = await writeLayer({
      entries: [{ type: 'file', path: 'f', source: src, size: 1, mode: 0o600, uid: 3_000_000, gid: 4_000_000, mtime: 0 }],
      epoch: 0,
      dir: base,
    });
    await applyLayer({ rootfs, blob: layer.path, name: 'big-ids' });
    const st = await stat(join(rootfs, 'f'));
    expect([st.uid, st.gid]).toEqual([3_000_000, 4_000_000]);
  });

  it('applies what writeLayer writes to the same tree', async () => {
    const src = join(base, 'src');
    await mkdir(src);
    await makeTree(src);
    const layer = await writeLayer({ entries: await entriesFromDirectory(src), epoch: 2_000_000_000, dir: base });
    await applyLayer({ rootfs, blob: layer.path, name: layer.digest });
    expect(await snapshotTree(rootfs)).toEqual(await snapshotTree(src));
  });
});
