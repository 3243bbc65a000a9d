import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveInRoot } from '../../../builder/executor/index.js';
import { isKilnError } from '../../../oci/errors.js';

describe('resolveInRoot', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kiln-root-'));
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await writeFile(join(root, 'usr/lib/file'), 'x');
    await symlink('/usr/lib', join(root, 'lib'));
    await symlink('../../../../../..', join(root, 'up'));
    await symlink('/etc/shadow', join(root, 'shadow'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    await symlink('usr/lib/file', join(root, 'relfile'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('follows absolute and relative symlinks inside the root', async () => {
    const r = await resolveInRoot(root, '/lib/file');
    expect(r.rel).toBe('usr/lib/file');
    expect(r.stats?.isFile()).toBe(true);
    expect((await resolveInRoot(root, '/relfile')).rel).toBe('usr/lib/file');
  });

  it('clamps .. and absolute targets at the root instead of reaching the host', async () => {
    expect((await resolveInRoot(root, '/up/etc/passwd')).rel).toBe('etc/passwd');
    expect((await resolveInRoot(root, '/../../usr/./lib/')).rel).toBe('usr/lib');
    const shadow = await resolveInRoot(root, '/shadow');
    expect(shadow).toMatchObject({ rel: 'etc/shadow', stats: undefined, existing: 0 });
  });

  it('keeps a missing tail literal and counts the existing head', async () => {
    const r = await resolveInRoot(root, '/lib/new/deeper');
    expect(r).toMatchObject({ rel: 'usr/lib/new/deeper', stats: undefined, existing: 2 });
    const back = await resolveInRoot(root, '/lib/missing/../file');
    expect(back.rel).toBe('usr/lib/file');
    expect(back.stats?.isFile()).toBe(true);
  });

  it('refuses symlink loops and paths through files', async () => {
    const loop: unknown = await resolveInRoot(root, '/loop1/x').catch((e: unknown) => e);
    expect(isKilnError(loop, 'VALIDATION')).toBe(true);
    const through: unknown = await resolveInRoot(root, '/relfile/x').catch((e: unknown) => e);
    expect(isKilnError(through, 'VALIDATION')).toBe(true);
    expect(String(through)).toContain('is not a directory');
  });
});
