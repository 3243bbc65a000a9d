import { lstat, mkdtemp, mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StatCache } from '../../../builder/context/stat-cache.js';
import { createHash } from 'node:crypto';

let dir: string;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const old = new Date(Date.now() - 3600_000);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-statcache-'));
  await mkdir(join(dir, 'ctx'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(name: string, content: string): Promise<void> {
  await writeFile(join(dir, 'ctx', name), content);
  await utimes(join(dir, 'ctx', name), old, old);
}

describe('StatCache', () => {
  it('digests once, then answers from the persisted cache until the stat changes', async () => {
    await put('a.txt', 'hello');
    let cache = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    const st = await lstat(join(dir, 'ctx', 'a.txt'), { bigint: true });
    expect(await cache.digest('a.txt', st)).toBe(sha('hello'));
    expect(cache.misses).toBe(1);
    await cache.save();
    expect(JSON.parse(await readFile(cache.file, 'utf8')).entries['a.txt'].sha256).toBe(sha('hello'));

    cache = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    expect(await cache.digest('a.txt', st)).toBe(sha('hello'));
    expect([cache.hits, cache.misses]).toEqual([1, 0]);

    await put('a.txt', 'world');
    const st2 = await lstat(join(dir, 'ctx', 'a.txt'), { bigint: true });
    expect(await cache.digest('a.txt', st2)).toBe(sha('world'));
    expect(cache.misses).toBe(1);
  });

  it('remembers a digest made elsewhere as a miss would (not for a racy file), so the next lookup reads nothing', async () => {
    await put('a.txt', 'hello');
    await writeFile(join(dir, 'ctx', 'now.txt'), 'racy');
    const cache = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    const st = await lstat(join(dir, 'ctx', 'a.txt'), { bigint: true });
    const now = await lstat(join(dir, 'ctx', 'now.txt'), { bigint: true });
    cache.remember('a.txt', st, sha('hello'));
    cache.remember('now.txt', now, sha('racy'));
    await cache.save();
    const reopened = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    expect(await reopened.digest('a.txt', st)).toBe(sha('hello'));
    expect([reopened.hits, reopened.misses]).toEqual([1, 0]);
    expect(JSON.parse(await readFile(cache.file, 'utf8')).entries['now.txt']).toBeUndefined();
  });

  it('does not persist a file modified just now (a racy entry), and ignores a corrupt cache file', async () => {
    await writeFile(join(dir, 'ctx', 'fresh'), 'x');
    const cache = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    await cache.digest('fresh', await lstat(join(dir, 'ctx', 'fresh'), { bigint: true }));
    await cache.save();
    await expect(readFile(cache.file, 'utf8')).rejects.toThrow(/ENOENT/);
    await mkdir(join(dir, 'cache'), { recursive: true });
    await writeFile(cache.file, '{not json');
    const again = await StatCache.open({ dir: join(dir, 'cache'), root: join(dir, 'ctx') });
    expect(await again.digest('fresh', await lstat(join(dir, 'ctx', 'fresh'), { bigint: true }))).toBe(sha('x'));
  });

  it('answers every unchanged file of a 2,000-file context from the cache, reading no content', async () => {
    const names: string[] = [];
    for (let d = 0; d < 20; d++) {
      await mkdir(join(dir, 'ctx', `d${d}`));
      await Promise.all(
        Array.from({ length: 100 }, async (_, f) => {
          const name = `d${d}/f${f}`;
          names.push(name);
          await put(name, `${d}-${f}`);
        }),
      );
    }
    const root = join(dir, 'ctx');
    const first = await StatCache.open({ dir: join(dir, 'cache'), root });
    const { walkSource } = await import('../../../builder/context/source-walk.js');
    for (const item of await walkSource(root, '', {})) if (item.kind === 'file') await first.digest(item.rel, item.stat);
    await first.save();

    const cache = await StatCache.open({ dir: join(dir, 'cache'), root });
    const items = await walkSource(root, '', {});
    const digests = await Promise.all(items.filter((i) => i.kind === 'file').map((i) => cache.digest(i.rel, i.stat)));
    // Speed is the benchmark's business (npm run bench -- build); here: every answer came from the cache.
    expect(digests).toHaveLength(2_000);
    expect(cache.hits).toBe(2_000);
    expect(cache.misses).toBe(0);
  });
});
