import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, cp, lstat, lutimes, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerEntry } from '../../../builder/layer/entry.js';
import { writeLayer } from '../../../builder/layer/writer.js';
import { OFF_THREAD_MIN_FILES, applyEntries } from '../../../builder/rootfs/apply-entries.js';
import { applyLayer } from '../../../builder/rootfs/apply-layer.js';
import { isLayerXattr, readXattrTree } from '../../../builder/rootfs/xattrs.js';
import { writeTar, type CraftEntry } from './craft-tar.js';
import { snapshotTree } from './tree-snapshot.js';

const EPOCH = 1_500;
const asRoot = process.getuid?.() === 0;

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-apply-entries-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A lower tree for the entries to change: files, directories with children, a symlink, a dir only a layer re-modes. */
async function makeBase(dir: string): Promise<void> {
  for (const d of ['etc', 'old-dir/sub', 'var/lib/sub', 'dir-gone/deep', 'keep', 'a']) await mkdir(join(dir, d), { recursive: true });
  const files: Record<string, string> = {
    'etc/conf': 'old conf',
    'etc/gone': 'bye',
    'old-dir/sub/x': 'x',
    'was-file': 'a file',
    'was-file2': 'another file',
    'var/lib/old': 'lower',
    'var/lib/sub/y': 'lower y',
    'dir-gone/deep/z': 'z',
    'keep/me': 'kept',
    'a/b': 'lower b',
  };
  for (const [path, data] of Object.entries(files)) await writeFile(join(dir, path), data);
  await symlink('etc', join(dir, 'etc-link'));
  await chmod(join(dir, 'keep'), 0o700);
}

/** Writes the content of every file entry under `src` and returns the entries with their sources set. */
async function withSources(src: string, specs: Array<LayerEntry | (Omit<Extract<LayerEntry, { type: 'file' }>, 'source' | 'size'> & { data: string })>): Promise<LayerEntry[]> {
  await mkdir(src, { recursive: true });
  const out: LayerEntry[] = [];
  for (const [i, spec] of specs.entries()) {
    if (!('data' in spec)) {
      out.push(spec);
      continue;
    }
    const { data, ...rest } = spec;
    const source = join(src, `f${i}`);
    await writeFile(source, data);
    if (rest.xattrs) for (const [k, v] of Object.entries(rest.xattrs)) execFileSync('setfattr', ['-n', k, '-v', `0x${v.toString('hex')}`, source]);
    // As diffOverlayUpper marks them: a source with xattrs the layer drops must be copied, not moved.
    const foreign = Object.keys(rest.xattrs ?? {}).some((k) => !isLayerXattr(k));
    out.push({ ...rest, source, size: Buffer.byteLength(data), ...(foreign ? { foreignXattrs: true } : {}) });
  }
  return out;
}

/** Everything an observer sees of a tree: snapshotTree plus mtimes and xattrs. */
async function observe(dir: string): Promise<{ tree: Record<string, string>; mtimes: Record<string, number | string>; xattrs: Record<string, Record<string, string>> }> {
  const mtimes: Record<string, number | string> = {};
  const since = Date.now() - 3_600_000;
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const st = await lstat(join(abs, name));
      const path = rel ? `${rel}/${name}` : name;
      // A directory the layer changes without listing it gets the time of the change: same path set, any moment.
      mtimes[path] = st.mtimeMs > since ? 'touched now' : st.mtimeMs;
      if (st.isDirectory()) await walk(join(abs, name), path);
    }
  };
  await walk(dir, '');
  const xattrs: Record<string, Record<string, string>> = {};
  for (const [path, attrs] of await readXattrTree(dir)) {
    xattrs[path.slice(dir.length)] = Object.fromEntries(Object.entries(attrs).filter(([k]) => !k.startsWith('security.selinux')).map(([k, v]) => [k, v.toString('hex')]));
  }
  return { tree: await snapshotTree(dir), mtimes, xattrs };
}

/** Applies `entries` to two copies of the base, via a written layer and via applyEntries; returns both roots. */
async function bothWays(entries: LayerEntry[], move = false, offThread?: boolean): Promise<{ viaLayer: string; viaEntries: string }> {
  const base = join(work, 'base');
  await makeBase(base);
  const viaLayer = join(work, 'via-layer');
  const viaEntries = join(work, 'via-entries');
  await cp(base, viaLayer, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  await cp(base, viaEntries, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  // cp leaves directory times at "now": pin every time so untouched paths compare equal too.
  await pinTimes(viaLayer);
  await pinTimes(viaEntries);
  await mkdir(join(work, 'blobs'));
  const file = await writeLayer({ entries, epoch: EPOCH, dir: join(work, 'blobs') });
  await applyLayer({ rootfs: viaLayer, blob: file.path, name: 'test-layer' });
  await applyEntries({ rootfs: viaEntries, entries, name: 'test-layer', epoch: EPOCH, move, ...(offThread !== undefined ? { offThread } : {}) });
  return { viaLayer, viaEntries };
}

/** The tar member writeLayer would make of an entry. */
function craftEntry(e: LayerEntry): CraftEntry {
  const slash = e.path.lastIndexOf('/');
  if (e.type === 'whiteout') return { name: `${e.path.slice(0, slash + 1)}.wh.${e.path.slice(slash + 1)}` };
  if (e.type === 'opaque') return { name: `${e.path}/.wh..wh..opq` };
  const common = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime };
  if (e.type === 'directory') return { ...common, name: `${e.path}/`, type: 'directory' };
  if (e.type === 'file') return { ...common, name: e.path, data: readFileSync(e.source) };
  return { ...common, name: e.path, type: e.type === 'hardlink' ? 'link' : 'symlink', linkname: e.linkname };
}

/** Sets the mtime of everything under `dir` to 42 s, children before their directory. */
async function pinTimes(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    if ((await lstat(path)).isDirectory()) await pinTimes(path);
    await lutimes(path, 42, 42);
  }
}

const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_000 };

const filesAndLinks = (): Parameters<typeof withSources>[1] => [
  { ...meta, type: 'directory', path: 'usr', mode: 0o755, mtime: 1_000 },
  { ...meta, type: 'directory', path: 'usr/bin', mode: 0o711, mtime: 2_000 },
  { ...meta, type: 'file', path: 'usr/bin/su', data: 'ELF su', mode: 0o4755, uid: 12, gid: 34, mtime: 3_000 },
  { ...meta, type: 'hardlink', path: 'usr/bin/su2', linkname: 'usr/bin/su' },
  { ...meta, type: 'symlink', path: 'usr/sbin', linkname: 'bin', mtime: 500 },
  { ...meta, type: 'file', path: 'etc/conf', data: 'new conf', mode: 0o640, uid: 7, gid: 8, mtime: 100 },
  { ...meta, type: 'file', path: 'old-dir', data: 'a file replaces a dir', mtime: 1_499 },
  { ...meta, type: 'directory', path: 'was-file', mode: 0o2775, mtime: 1_501 },
  { ...meta, type: 'file', path: 'was-file/inside', data: 'in the new dir', mode: 0o600 },
  { ...meta, type: 'symlink', path: 'was-file2', linkname: '/etc/conf' },
  { ...meta, type: 'directory', path: 'keep', mode: 0o1777, uid: 3, gid: 4, mtime: 0 },
  { ...meta, type: 'file', path: 'keep/cap', data: 'cap', xattrs: { 'user.kiln': Buffer.from('yes'), 'user.overlay.origin': Buffer.from('no') } },
  { ...meta, type: 'file', path: 'etc-link/through', data: 'through a symlink inside the root' },
];

const deletions = (): Parameters<typeof withSources>[1] => [
  { type: 'whiteout', path: 'a/b' },
  { ...meta, type: 'file', path: 'a/b', data: 'this layer re-adds b' },
  { type: 'whiteout', path: 'dir-gone' },
  { type: 'whiteout', path: 'etc/gone' },
  { type: 'whiteout', path: 'never-was' },
  { ...meta, type: 'directory', path: 'var/lib', mode: 0o750, mtime: 1_200 },
  { type: 'opaque', path: 'var/lib' },
  { ...meta, type: 'file', path: 'var/lib/new', data: 'only this survives' },
  { ...meta, type: 'directory', path: 'var/lib/sub', mtime: 9_999 },
];

describe.each([
  ['on the main thread', false],
  ['with files copied on a worker thread', true],
])('applyEntries %s: the same tree as applyLayer on the written layer', (_how, offThread) => {
  it('files, dirs, symlinks, hard links, setuid, owners, xattrs and mtimes above and below the epoch', async () => {
    const entries = await withSources(join(work, 'src'), filesAndLinks());
    const { viaLayer, viaEntries } = await bothWays(entries, false, offThread);
    const expected = await observe(viaLayer);
    expect(await observe(viaEntries)).toEqual(expected);
    // And that tree is the right one, not merely the same mistake twice.
    expect(expected.tree['usr/bin/su']).toBe(`file 4755 ${asRoot ? '12:34' : `${process.getuid?.()}:${process.getgid?.()}`} nlink=2 ELF su`);
    expect(expected.tree['old-dir']).toMatch(/^file 644 .* a file replaces a dir$/);
    expect(expected.tree['was-file']).toMatch(/^dir 2775 /);
    expect(expected.tree['etc/through']).toMatch(/through a symlink inside the root$/);
    expect(expected.tree['keep']).toMatch(/^dir 1777 /);
    expect(expected.mtimes['usr/bin/su']).toBe(EPOCH * 1000);
    expect(expected.mtimes['usr/bin']).toBe(EPOCH * 1000);
    expect(expected.mtimes['etc/conf']).toBe(100_000);
    expect(expected.mtimes['keep']).toBe(0);
    expect(expected.xattrs['/keep/cap']).toEqual({ 'user.kiln': Buffer.from('yes').toString('hex') });
  });

  it('whiteouts, an opaque directory and a re-added whited-out path', async () => {
    const entries = await withSources(join(work, 'src'), deletions());
    const { viaLayer, viaEntries } = await bothWays(entries, false, offThread);
    const expected = await observe(viaLayer);
    expect(await observe(viaEntries)).toEqual(expected);
    const paths = Object.keys(expected.tree);
    expect(paths.filter((p) => p.startsWith('var/lib/'))).toEqual(['var/lib/new', 'var/lib/sub']);
    expect(paths).not.toContain('dir-gone');
    expect(paths).not.toContain('etc/gone');
    expect(expected.tree['a/b']).toMatch(/this layer re-adds b$/);
    expect(expected.tree['var/lib']).toMatch(/^dir 750 /);
    expect(expected.mtimes['var/lib/sub']).toBe(EPOCH * 1000);
  });

  it('with move: the same tree, the sources renamed away', async () => {
    const entries = await withSources(join(work, 'src'), [...filesAndLinks(), ...deletions()]);
    const { viaLayer, viaEntries } = await bothWays(entries, true);
    expect(await observe(viaEntries)).toEqual(await observe(viaLayer));
    // Root may rename; others copy (a moved file would keep its owner).
    // keep/cap's source has a foreign xattr, so it stays.
    expect((await readdir(join(work, 'src'))).length).toBe(asRoot ? 1 : entries.filter((e) => e.type === 'file').length);
  });

  it('copies rather than moves a source marked as having foreign xattrs', async () => {
    const entries = await withSources(join(work, 'src'), [{ ...meta, type: 'file', path: 'f', data: 'kept source', foreignXattrs: true }]);
    await mkdir(join(work, 'root'));
    await applyEntries({ rootfs: join(work, 'root'), entries, name: 'l', epoch: EPOCH, move: true });
    expect(await readdir(join(work, 'src'))).toEqual(['f0']);
    expect((await snapshotTree(join(work, 'root')))['f']).toMatch(/kept source$/);
  });

  it('entries out of layer order are applied in layer order (a hard link listed before its target)', async () => {
    const entries = await withSources(join(work, 'src'), [
      { ...meta, type: 'hardlink', path: 'z/link', linkname: 'z/a' },
      { ...meta, type: 'file', path: 'z/a', data: 'target' },
      { ...meta, type: 'directory', path: 'z', mode: 0o705 },
    ]);
    const { viaLayer, viaEntries } = await bothWays(entries, false, offThread);
    expect(await observe(viaEntries)).toEqual(await observe(viaLayer));
    expect((await snapshotTree(viaEntries))['z/link']).toMatch(/nlink=2 target$/);
  });

  it('two names of one path (through a symlink of the base) and a later entry replacing a parent of a copy', async () => {
    // etc becomes a symlink to var, so etc/conf and etc-link/conf (etc-link → etc in the base) are both var/conf.
    // alias/f lands in zdir/f (alias → zdir, made on the way), which the later file zdir replaces with its directory.
    const entries = await withSources(join(work, 'src'), [
      { ...meta, type: 'symlink', path: 'etc', linkname: 'var' },
      { ...meta, type: 'file', path: 'etc/conf', data: 'first' },
      { ...meta, type: 'file', path: 'etc-link/conf', data: 'second, replaces it' },
      { ...meta, type: 'symlink', path: 'alias', linkname: 'zdir' },
      { ...meta, type: 'file', path: 'alias/f', data: 'into zdir, which goes' },
      { ...meta, type: 'file', path: 'zdir', data: 'replaces the dir' },
    ]);
    const { viaLayer, viaEntries } = await bothWays(entries, false, offThread);
    const expected = await observe(viaLayer);
    expect(await observe(viaEntries)).toEqual(expected);
    expect(expected.tree['var/conf']).toMatch(/second, replaces it$/);
    expect(expected.tree['zdir']).toMatch(/^file .*replaces the dir$/);
  });

  it(`a change of ${OFF_THREAD_MIN_FILES + 10} files in nested directories`, async () => {
    const specs: Parameters<typeof withSources>[1] = [];
    for (let i = 0; i < OFF_THREAD_MIN_FILES + 10; i++) {
      specs.push({ ...meta, type: 'file', path: `many/d${i % 7}/f${i}`, data: `file ${i} `.repeat(i % 50), mode: 0o600 + (i % 64), mtime: i });
    }
    const entries = await withSources(join(work, 'src'), specs);
    const { viaLayer, viaEntries } = await bothWays(entries, false, offThread);
    expect(await observe(viaEntries)).toEqual(await observe(viaLayer));
  });
});

describe('applyEntries: hostile paths are refused as applyLayer refuses them', () => {
  const hostile: Array<[string, (src: string) => Promise<LayerEntry[]>]> = [
    ['a file through a symlink that climbs out', (src) => withSources(src, [{ ...meta, type: 'file', path: 'esc/pwned', data: 'x' }])],
    ['a directory through a symlink that climbs out', async () => [{ ...meta, type: 'directory', path: 'esc/pwned-dir' }]],
    ['a symlink through a symlink that climbs out', async () => [{ ...meta, type: 'symlink', path: 'esc/pwned-link', linkname: '/' }]],
    ['a hard link to a file outside through a symlink', async () => [{ ...meta, type: 'hardlink', path: 'stolen', linkname: 'esc/secret' }]],
    ['a whiteout through a symlink that climbs out', async () => [{ type: 'whiteout', path: 'esc/secret' }]],
  ];
  for (const [what, make] of hostile) {
    it(`refuses ${what} with UNSAFE_PATH and changes nothing outside the root`, async () => {
      // The root sits two levels down, so the "../../.." symlink lands in `work`, where the secret is.
      const rootfs = join(work, 'a', 'b', 'rootfs');
      await mkdir(rootfs, { recursive: true });
      await symlink('../../..', join(rootfs, 'esc'));
      await writeFile(join(work, 'secret'), 'host secret');
      const entries = await make(join(work, 'src'));
      // Hand-made: writeLayer itself refuses a hard link to anything but a file of the same layer.
      const blob = await writeTar(join(work, 'evil.tar'), entries.map(craftEntry));
      await expect(applyLayer({ rootfs, blob, name: 'evil' })).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
      await expect(applyEntries({ rootfs, entries, name: 'evil', epoch: EPOCH, move: true })).rejects.toMatchObject({
        code: 'UNSAFE_PATH',
        message: expect.stringContaining('layer evil'),
      });
      expect((await readdir(work)).sort()).toEqual(['a', 'evil.tar', 'secret', 'src'].filter((n) => n !== 'src' || entries.some((e) => e.type === 'file')));
      expect(await readdir(rootfs)).toEqual(['esc']);
    });
  }

  it('refuses paths with ".." or a leading "/", which writeLayer would not take either', async () => {
    const rootfs = join(work, 'root');
    await mkdir(rootfs);
    for (const path of ['../out', 'x/../../out', '/abs']) {
      await expect(applyEntries({ rootfs, entries: [{ ...meta, type: 'directory', path }], name: 'evil', epoch: EPOCH })).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
    }
    await expect(applyEntries({ rootfs, entries: [{ ...meta, type: 'hardlink', path: 'h', linkname: '../x' }], name: 'evil', epoch: EPOCH })).rejects.toMatchObject({
      code: 'UNSAFE_PATH',
    });
    expect(await readdir(rootfs)).toEqual([]);
    expect((await readdir(work)).sort()).toEqual(['root']);
  });

  it('refuses a file whose source changed size since the layer was written', async () => {
    const entries = await withSources(join(work, 'src'), [{ ...meta, type: 'file', path: 'f', data: 'short' }]);
    await writeFile(join(work, 'src', 'f0'), 'much longer now');
    await mkdir(join(work, 'root'));
    await expect(applyEntries({ rootfs: join(work, 'root'), entries, name: 'l', epoch: EPOCH })).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    await rm(join(work, 'root', 'f'));
    await expect(applyEntries({ rootfs: join(work, 'root'), entries, name: 'l', epoch: EPOCH, offThread: true })).rejects.toMatchObject({
      code: 'BUILD_FAILED',
      message: expect.stringContaining('changed size'),
    });
  });

  it('copying on a worker thread, refuses a file through a symlink that climbs out and writes nothing outside', async () => {
    const rootfs = join(work, 'a', 'b', 'rootfs');
    await mkdir(rootfs, { recursive: true });
    await symlink('../../..', join(rootfs, 'esc'));
    const entries = await withSources(join(work, 'src'), [
      { ...meta, type: 'file', path: 'a-first', data: 'fine' },
      { ...meta, type: 'file', path: 'esc/pwned', data: 'x' },
    ]);
    await expect(applyEntries({ rootfs, entries, name: 'evil', epoch: EPOCH, offThread: true })).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
    expect((await readdir(work)).sort()).toEqual(['a', 'src']);
  });
});
