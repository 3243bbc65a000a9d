import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { chmod, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeLayer } from '../../../builder/layer/writer.js';
import { applyLayer } from '../../../builder/rootfs/apply-layer.js';
import { diffOverlayUpper } from '../../../builder/rootfs/overlay-diff.js';
import { snapshotTree } from './tree-snapshot.js';

/** Whether this machine lets us mount overlayfs (root, kernel support) and read xattrs with getfattr. */
function overlayUsable(): boolean {
  if (process.getuid?.() !== 0 || spawnSync('getfattr', ['--version']).status !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-overlay-probe-'));
  try {
    for (const d of ['l', 'u', 'w', 'm']) mkdirSync(join(dir, d));
    const opts = `lowerdir=${dir}/l,upperdir=${dir}/u,workdir=${dir}/w`;
    if (spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', opts, join(dir, 'm')]).status !== 0) return false;
    spawnSync('umount', [join(dir, 'm')]);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const usable = overlayUsable();

let base: string;
let lower: string;
let upper: string;
let merged: string;
let mounted = false;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-overlay-test-'));
  [lower, upper, merged] = ['lower', 'upper', 'merged'].map((d) => join(base, d)) as [string, string, string];
  for (const d of [lower, upper, merged, join(base, 'work')]) await mkdir(d);
});
afterEach(async () => {
  if (mounted) execFileSync('umount', [merged]);
  mounted = false;
  await rm(base, { recursive: true, force: true });
});

function mount(): void {
  // redirect_dir/metacopy off: renames and chmods then copy whole dirs and files up, which a tree walk can read.
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${join(base, 'work')},redirect_dir=off,metacopy=off`, merged]);
  mounted = true;
}

function unmount(): void {
  execFileSync('umount', [merged]);
  mounted = false;
}

// Overlayfs is part of what the builder needs: where it cannot mount, these tests fail rather than skip.
describe('diffOverlayUpper on a real overlay mount', () => {
  it('can mount overlayfs here (root and a kernel with overlay)', () => {
    expect(usable).toBe(true);
  });
  it('turns creations, changes, deletions, an opaque dir and hard links into entries that rebuild the merged view', async () => {
    await mkdir(join(lower, 'etc/conf.d'), { recursive: true });
    await writeFile(join(lower, 'etc/keep'), 'keep');
    await writeFile(join(lower, 'etc/modify'), 'old');
    await writeFile(join(lower, 'etc/delete'), 'bye');
    await writeFile(join(lower, 'etc/conf.d/a'), 'a');
    await mkdir(join(lower, 'opt/app/lib'), { recursive: true });
    await writeFile(join(lower, 'opt/app/lib/old.so'), 'old');
    await writeFile(join(lower, 'opt/app/README'), 'old');
    await mkdir(join(lower, 'var/gone'), { recursive: true });
    await writeFile(join(lower, 'var/gone/x'), '');

    mount();
    try {
      await writeFile(join(merged, 'etc/modify'), 'new');
      await rm(join(merged, 'etc/delete'));
      await rm(join(merged, 'var/gone'), { recursive: true });
      await rm(join(merged, 'opt/app'), { recursive: true });
      await mkdir(join(merged, 'opt/app'));
      await writeFile(join(merged, 'opt/app/fresh'), 'fresh');
      await mkdir(join(merged, 'srv/data'), { recursive: true });
      await writeFile(join(merged, 'srv/data/h1'), 'shared');
      await link(join(merged, 'srv/data/h1'), join(merged, 'srv/data/h2'));
      await link(join(merged, 'srv/data/h1'), join(merged, 'srv/a-link'));
      await symlink('data/h1', join(merged, 'srv/sym'));
      await writeFile(join(merged, 'srv/tool'), 'tool');
      await chmod(join(merged, 'srv/tool'), 0o4755);
      execFileSync('setfattr', ['-n', 'user.kiln', '-v', 'yes', join(merged, 'srv/tool')]);
    } finally {
      unmount();
    }
    mount();
    const expected = await snapshotTree(merged);
    unmount();

    const entries = await diffOverlayUpper({ upper });
    const summary = entries.map((e) => `${e.type} ${e.path}${'linkname' in e ? ` -> ${e.linkname}` : ''}`);
    expect(summary).toEqual([
      'directory etc',
      'whiteout etc/delete',
      'file etc/modify',
      'directory opt',
      'directory opt/app',
      'opaque opt/app',
      'file opt/app/fresh',
      'directory srv',
      'file srv/a-link',
      'directory srv/data',
      'hardlink srv/data/h1 -> srv/a-link',
      'hardlink srv/data/h2 -> srv/a-link',
      'symlink srv/sym -> data/h1',
      'file srv/tool',
      'directory var',
      'whiteout var/gone',
    ]);
    const tool = entries.find((e) => e.path === 'srv/tool');
    expect(tool?.type === 'file' && tool.mode).toBe(0o4755);
    expect(tool?.type === 'file' && tool.xattrs?.['user.kiln']?.toString()).toBe('yes');
    // overlayfs' own xattrs never reach the layer.
    for (const e of entries) if ('xattrs' in e && e.xattrs) expect(Object.keys(e.xattrs).filter((k) => k.includes('overlay'))).toEqual([]);

    const layer = await writeLayer({ entries, epoch: 2_000_000_000, dir: base });
    const copy = join(base, 'copy');
    execFileSync('cp', ['-a', lower, copy]);
    await applyLayer({ rootfs: copy, blob: layer.path, name: layer.digest });
    expect(await snapshotTree(copy)).toEqual(expected);
    expect(execFileSync('getfattr', ['--absolute-names', '-n', 'user.kiln', '--only-values', join(copy, 'srv/tool')]).toString()).toBe('yes');
  });

  it('fails with a hint when the upper holds a redirect (redirect_dir=on)', async () => {
    await mkdir(join(upper, 'moved'));
    execFileSync('setfattr', ['-n', 'trusted.overlay.redirect', '-v', '/orig', join(upper, 'moved')]);
    await expect(diffOverlayUpper({ upper })).rejects.toThrow(/redirect_dir=off/);
  });
});
