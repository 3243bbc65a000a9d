import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';
import { buildImage } from '../build/helpers.js';

let ws: BuildWorkspace;
beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

/** Everything about a tree a build could change in place: type, owner, mode, size, mtime, content, link target. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = join(root, rel, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(path);
      let what = `${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs}`;
      if (st.isSymbolicLink()) what += ` -> ${await readlink(path)}`;
      else if (st.isFile()) what += ` ${createHash('sha256').update(await readFile(path)).digest('hex')}`;
      out[key] = what;
      if (st.isDirectory()) await walk(key);
    }
  };
  await walk('');
  return out;
}

async function cachedTrees(): Promise<string[]> {
  return (await readdir(join(ws.dataDir, 'unpacked')).catch(() => [])).filter((n) => !n.endsWith('.xattrs.json'));
}

describe('unpacked base images (the store\'s unpacked/ cache)', () => {
  it('unpacks a base once and gives each stage a hard-linked clone; steps that change base files leave the cache as it was', async () => {
    const ctx = await ws.context({
      Dockerfile: [
        'FROM busybox',
        'COPY f.txt /etc/f.txt',
        // A RUN that changes base files in every way, through the overlay; then a COPY replacing one directly.
        'RUN stat -c %h /bin/busybox > /nlink && echo more >> /etc/passwd && chmod 600 /etc/group && touch -d @5 /etc/passwd && rm /bin/sh && ln /bin/busybox /bin/bb',
        'COPY group /etc/group',
        '',
      ].join('\n'),
      'f.txt': 'one\n',
      group: 'root:x:0:\nusers:x:100:\n',
    });
    const first = await buildImage(ws, [ctx]);
    const trees = await cachedTrees();
    expect(trees).toHaveLength(1);
    const cache = join(ws.dataDir, 'unpacked', trees[0]!);
    const before = await snapshot(cache);
    expect(before['bin/busybox']).toBeDefined();
    // The RUN saw the cached inode through the clone: two names, the cache's and the stage rootfs'.
    expect(first.text('nlink')).toBe('2\n');

    await writeFile(join(ctx, 'f.txt'), 'two\n');
    const second = await buildImage(ws, [ctx]);
    expect(second.run.stderr).not.toMatch(/^#\d+ CACHED$/m);
    expect(await cachedTrees()).toEqual(trees);
    expect(await snapshot(cache)).toEqual(before);
    expect(second.text('etc/group')).toBe('root:x:0:\nusers:x:100:\n');
    expect(second.text('etc/passwd')).toMatch(/more\n$/);

    // prune drops the unpacked trees; unpacked again, the same inputs give the same image.
    const pruned = await ws.kiln(['prune']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(await cachedTrees()).toEqual([]);
    const fresh = await buildImage(ws, ['--no-cache', ctx]);
    expect(fresh.digest).toBe(second.digest);
  });
});
