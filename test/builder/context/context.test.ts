import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openBuildContext } from '../../../builder/context/context.js';
import { loadDockerignore } from '../../../builder/context/dockerignore.js';
import { isKilnError } from '../../../oci/errors.js';
import { makeTree, tempDir } from './helpers.js';
import { compress, makeTar, type Member } from './tar-fixtures.js';

let base: string;
let done: () => Promise<void>;

beforeEach(async () => {
  ({ dir: base, done } = await tempDir('kiln-context-'));
});
afterEach(async () => done());

describe('openBuildContext (directory)', () => {
  it('opens a directory with its .dockerignore', async () => {
    await makeTree(join(base, 'ctx'), { '.dockerignore': 'node_modules\n', 'Dockerfile': 'FROM scratch' });
    const c = await openBuildContext(join(base, 'ctx'), { tmpDir: join(base, 'tmp') });
    expect(c.root).toBe(join(base, 'ctx'));
    expect(c.ignore?.matches('node_modules/x')).toBe(true);
    expect(c.ignore?.matches('Dockerfile')).toBe(false);
    await c.cleanup();
    expect((await stat(c.root)).isDirectory()).toBe(true);
  });

  it('prefers <Dockerfile>.dockerignore beside a custom Dockerfile', async () => {
    await makeTree(join(base, 'ctx'), { '.dockerignore': 'a\n', 'build/app.Dockerfile': 'FROM scratch', 'build/app.Dockerfile.dockerignore': 'b\n' });
    const c = await openBuildContext(join(base, 'ctx'), { tmpDir: join(base, 'tmp'), dockerfile: join(base, 'ctx/build/app.Dockerfile') });
    expect(c.ignoreFile).toBe(join(base, 'ctx/build/app.Dockerfile.dockerignore'));
    expect([c.ignore?.matches('a'), c.ignore?.matches('b')]).toEqual([false, true]);
    const plain = await loadDockerignore({ contextDir: join(base, 'ctx'), dockerfile: join(base, 'ctx/Dockerfile') });
    expect(plain?.file).toBe(join(base, 'ctx/.dockerignore'));
    expect(await loadDockerignore({ contextDir: join(base, 'ctx', 'build') })).toBeUndefined();
  });

  it('rejects a missing context and a file as CONTEXT_INVALID', async () => {
    await writeFile(join(base, 'file'), 'x');
    for (const spec of [join(base, 'nope'), join(base, 'file')]) {
      const err = await openBuildContext(spec, { tmpDir: base }).catch((e: unknown) => e);
      expect(isKilnError(err, 'CONTEXT_INVALID')).toBe(true);
      expect((err as Error).message).toMatch(/build context .* (does not exist|is not a directory)/);
    }
  });
});

describe('openBuildContext (tar on stdin)', () => {
  const good: Member[] = [
    { name: 'Dockerfile', content: 'FROM scratch\nCOPY . /\n' },
    { name: '.dockerignore', content: '*.log\n' },
    { name: 'src/', type: 'directory', mode: 0o700 },
    { name: 'src/main.c', content: 'int main;', mode: 0o640, mtime: 1_000_000 },
    { name: 'src/link', type: 'symlink', linkname: '../Dockerfile' },
    { name: 'src/hard', type: 'link', linkname: 'src/main.c' },
    { name: '/abs/file', content: 'leading slash dropped' },
  ];

  it.each(['none', 'gzip'] as const)('extracts a %s tar into tmpDir and removes it on cleanup', async (kind) => {
    const stdin = Readable.from([compress(await makeTar(good), kind)]);
    const c = await openBuildContext('-', { stdin, tmpDir: join(base, 'tmp') });
    expect(c.root.startsWith(join(base, 'tmp'))).toBe(true);
    expect(await readFile(join(c.root, 'src/main.c'), 'utf8')).toBe('int main;');
    const st = await lstat(join(c.root, 'src/main.c'));
    expect([st.mode & 0o7777, Math.floor(st.mtimeMs / 1000), st.nlink]).toEqual([0o640, 1_000_000, 2]);
    expect((await lstat(join(c.root, 'src'))).mode & 0o7777).toBe(0o700);
    expect(await readlink(join(c.root, 'src/link'))).toBe('../Dockerfile');
    expect(await readFile(join(c.root, 'abs/file'), 'utf8')).toBe('leading slash dropped');
    expect(c.ignore?.matches('x.log')).toBe(true);
    await c.cleanup();
    await expect(stat(c.root)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    [[{ name: '../../etc/cron.d/x', content: 'x' }], 'UNSAFE_PATH', /escapes the archive/],
    [[{ name: 'l', type: 'symlink', linkname: '/etc' }, { name: 'l/passwd', content: 'x' }], 'UNSAFE_PATH', /below the symlink/],
    [[{ name: 'null', type: 'character-device' }], 'UNSAFE_PATH', /character-device/],
    [[{ name: 'p', type: 'fifo' }], 'UNSAFE_PATH', /fifo/],
    [[{ name: 'big', content: 'x'.repeat(2000) }], 'TOO_LARGE', /more than 1000 bytes/],
  ] as [Member[], string, RegExp][])('refuses an unsafe or oversized archive (%#) and leaves nothing behind', async (members, code, message) => {
    const stdin = Readable.from([await makeTar(members)]);
    const err = await openBuildContext('-', { stdin, tmpDir: join(base, 'tmp'), limits: { maxBytes: 1000, maxEntries: 10 } }).catch((e: unknown) => e);
    expect(isKilnError(err, code as 'UNSAFE_PATH')).toBe(true);
    expect((err as Error).message).toMatch(message);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(base, 'tmp'))).toEqual([]);
  });

  it('reports garbage on stdin and a missing stdin', async () => {
    const err = await openBuildContext('-', { stdin: Readable.from([Buffer.alloc(1024, 7)]), tmpDir: join(base, 'tmp') }).catch((e: unknown) => e);
    expect(isKilnError(err, 'ARCHIVE_INVALID')).toBe(true);
    const usage = await openBuildContext('-', { tmpDir: base }).catch((e: unknown) => e);
    expect(isKilnError(usage, 'USAGE')).toBe(true);
  });
});
