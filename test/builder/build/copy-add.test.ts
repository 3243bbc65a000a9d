import { createHash } from 'node:crypto';
import { link, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';
import { run } from '../../support/kiln.js';
import { requirePeer } from '../../support/peers.js';
import { buildFiles, buildImage, expectNothingLeft, storedImages, type BuiltImage } from './helpers.js';

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

const FILES: Record<string, string> = {
  'a.txt': 'A\n',
  'b.txt': 'B\n',
  'notes.md': 'md\n',
  'dir/one.txt': '1\n',
  'dir/sub/two.txt': '2\n',
  'dir/debug.log': 'log\n',
  'dir/keep.log': 'keep\n',
  'top.log': 'top\n',
  'tree/x/y/deep.txt': 'deep\n',
  'tree/x/z/other.md': 'other\n',
  'secret/hidden.txt': 'hidden\n',
  'cache.tmp': 'tmp\n',
  'dir/sub/x.tmp': 'tmp\n',
  '.dockerignore': 'secret/\n**/*.tmp\n*.log\ndir/*.log\n!dir/keep.log\n',
};

describe('COPY flags and path rules', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const dockerfile = [
      'FROM busybox',
      'COPY --chown=app a.txt /own/name',
      'COPY --chown=1000:50 a.txt /own/ids',
      'COPY --chown=app:staff a.txt /own/names',
      'COPY --chmod=0640 a.txt /mode/file',
      'COPY --chmod=0700 dir /mode/dir/',
      'COPY *.txt /globbed/',
      'COPY dir /contents',
      'COPY dir/sub/two.txt /newdir/',
      'COPY a.txt /renamed',
      'COPY --parents tree/x/*/deep.txt /parents/',
      'COPY --exclude=sub --exclude=*.log dir /excluded/',
      'COPY . /all/',
      '',
    ].join('\n');
    image = await buildFiles(ws, { ...FILES, Dockerfile: dockerfile });
  });

  it('--chown by user name (its primary group), by uid:gid and by user:group names', () => {
    expect([image.file('own/name')?.uid, image.file('own/name')?.gid]).toEqual([1000, 1000]);
    expect([image.file('own/ids')?.uid, image.file('own/ids')?.gid]).toEqual([1000, 50]);
    expect([image.file('own/names')?.uid, image.file('own/names')?.gid]).toEqual([1000, 50]);
    expect([image.file('renamed')?.uid, image.file('renamed')?.gid]).toEqual([0, 0]);
  });

  it('--chmod sets the mode of files and of copied directories', () => {
    expect(image.file('mode/file')!.mode & 0o7777).toBe(0o640);
    expect(image.file('mode/dir/one.txt')!.mode & 0o7777).toBe(0o700);
    expect(image.file('mode/dir/sub')!.mode & 0o7777).toBe(0o700);
  });

  it('globs select matching files only', () => {
    expect(image.text('globbed/a.txt')).toBe('A\n');
    expect(image.text('globbed/b.txt')).toBe('B\n');
    expect(image.file('globbed/notes.md')).toBeUndefined();
  });

  it('a directory source copies its contents, not the directory itself', () => {
    expect(image.text('contents/one.txt')).toBe('1\n');
    expect(image.text('contents/sub/two.txt')).toBe('2\n');
    expect(image.file('contents/dir')).toBeUndefined();
  });

  it('a trailing slash makes the destination a directory; without one it is the file\'s new name', () => {
    expect(image.text('newdir/two.txt')).toBe('2\n');
    expect(image.file('renamed')?.type).toBe('0');
    expect(image.text('renamed')).toBe('A\n');
  });

  it('--parents keeps the source path below the destination', () => {
    expect(image.text('parents/tree/x/y/deep.txt')).toBe('deep\n');
    expect(image.file('parents/deep.txt')).toBeUndefined();
    expect(image.file('parents/tree/x/z/other.md')).toBeUndefined();
  });

  it('--exclude leaves out matching paths', () => {
    expect(image.text('excluded/one.txt')).toBe('1\n');
    expect(image.file('excluded/sub')).toBeUndefined();
    expect(image.file('excluded/sub/two.txt')).toBeUndefined();
    expect(image.file('excluded/keep.log')).toBeUndefined();
  });

  it('.dockerignore: directories, ** patterns, anchored patterns and ! exceptions', () => {
    expect(image.text('all/a.txt')).toBe('A\n');
    expect(image.text('all/dir/keep.log')).toBe('keep\n');
    expect(image.file('all/dir/debug.log')).toBeUndefined();
    expect(image.file('all/top.log')).toBeUndefined();
    expect(image.file('all/secret')).toBeUndefined();
    expect(image.file('all/secret/hidden.txt')).toBeUndefined();
    expect(image.file('all/cache.tmp')).toBeUndefined();
    expect(image.file('all/dir/sub/x.tmp')).toBeUndefined();
    expect(image.text('all/dir/sub/two.txt')).toBe('2\n');
  });

  it('a file the .dockerignore excludes cannot be copied by name', async () => {
    const before = await storedImages(ws);
    const ctx = await ws.context({ ...FILES, Dockerfile: 'FROM busybox\nCOPY secret/hidden.txt /\n' });
    const r = await ws.build(['-t', 'ignored:1', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:2/);
    expect(r.stderr).toContain('secret/hidden.txt');
    await expectNothingLeft(ws, before);
  });

  it('<Dockerfile>.dockerignore beside -f replaces the context\'s .dockerignore', async () => {
    const ctx = await ws.context({ 'a.txt': 'A\n', 'b.txt': 'B\n', '.dockerignore': 'a.txt\n', 'build/App.Dockerfile': 'FROM busybox\nCOPY . /all/\n', 'build/App.Dockerfile.dockerignore': 'b.txt\nbuild\n' });
    const img = await buildImage(ws, ['-f', join(ctx, 'build/App.Dockerfile'), ctx]);
    expect(img.text('all/a.txt')).toBe('A\n');
    expect(img.file('all/b.txt')).toBeUndefined();
    expect(img.file('all/build')).toBeUndefined();
  });
});

describe('COPY --link', () => {
  it('the layer does not depend on what is below it', async () => {
    const files = { 'f.txt': 'linked\n' };
    const one = await buildFiles(ws, { ...files, Dockerfile: 'FROM busybox\nCOPY --link f.txt /bin/f.txt\n' });
    const two = await buildFiles(ws, { ...files, Dockerfile: 'FROM busybox\nRUN mkdir -p /bin/other\nCOPY --link f.txt /bin/f.txt\n' });
    expect(one.text('bin/f.txt')).toBe('linked\n');
    expect(one.layerBytes.at(-1)!.equals(two.layerBytes.at(-1)!)).toBe(true);
  });
});

describe('ADD', () => {
  let server: Server;
  let base: string;
  const body = 'downloaded over http\n';
  const good = createHash('sha256').update(body).digest('hex');

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/files/fetched.txt') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(body);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a local tar.gz is extracted; COPY of the same file and ADD --unpack=false are not', async () => {
    const tar = requirePeer('tar', 'tar');
    const ctx = await ws.context({ Dockerfile: 'FROM busybox\nADD payload.tar.gz /unpacked/\nCOPY payload.tar.gz /packed/\nADD --unpack=false payload.tar.gz /kept/\n' });
    const payload = join(ws.dir, 'payload');
    await mkdir(join(payload, 'inner'), { recursive: true });
    await writeFile(join(payload, 'inner/file.txt'), 'from the archive\n');
    const made = await run(tar, ['-C', payload, '-czf', join(ctx, 'payload.tar.gz'), 'inner']);
    expect(made.code).toBe(0);
    const img = await buildImage(ws, [ctx]);
    expect(img.text('unpacked/inner/file.txt')).toBe('from the archive\n');
    expect(img.file('packed/payload.tar.gz')?.type).toBe('0');
    expect(img.file('packed/inner/file.txt')).toBeUndefined();
    // ADD --unpack=false copies the archive as a file.
    expect(img.file('kept/payload.tar.gz')?.type).toBe('0');
    expect(img.file('kept/inner/file.txt')).toBeUndefined();
  });

  it('a URL with the right --checksum is downloaded (mode 0600, named after the URL)', async () => {
    const img = await buildFiles(ws, { Dockerfile: `FROM busybox\nADD --checksum=sha256:${good} ${base}/files/fetched.txt /dl/\nADD ${base}/files/fetched.txt /dl/renamed.txt\n` });
    expect(img.text('dl/fetched.txt')).toBe(body);
    expect(img.file('dl/fetched.txt')!.mode & 0o7777).toBe(0o600);
    expect(img.text('dl/renamed.txt')).toBe(body);
  });

  it('a wrong --checksum fails the build and leaves nothing behind', async () => {
    const before = await storedImages(ws);
    const ctx = await ws.context({ Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/fetched.txt /dl/\n` });
    const r = await ws.build(['-t', 'badsum:1', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Dockerfile:2');
    expect(r.stderr).toContain('checksum mismatch');
    expect(r.stderr).toContain(good);
    await expectNothingLeft(ws, before);
  });

  it('a URL that answers 404 fails the build with the status', async () => {
    const ctx = await ws.context({ Dockerfile: `FROM busybox\nADD ${base}/files/missing.txt /dl/\n` });
    const r = await ws.build([ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('404');
  });
});

describe('COPY in a cold store (its key made after the layer is written, from the bytes the writer read)', () => {
  let cold: BuildWorkspace;
  let other: BuildWorkspace;
  beforeAll(async () => {
    cold = await buildWorkspace();
    other = await buildWorkspace();
  });
  afterAll(async () => {
    await cold.cleanup();
    await other.cleanup();
  });

  it('keys the step as a warm store would: the rebuild hits, and --no-cache in another store gives the same key and image', async () => {
    // Past the worker-thread threshold, with a large (streamed) file, a symlink and a hard link.
    const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY . /ctx\n', 'big.bin': 'x'.repeat(700 * 1024) };
    for (let i = 0; i < 300; i++) files[`d${i % 9}/f${i}.txt`] = `file ${i}\n`.repeat(i % 40);
    const ctx = await cold.context(files, 'cold');
    await symlink('big.bin', join(ctx, 'link-to-big'));
    await link(join(ctx, 'd0/f0.txt'), join(ctx, 'hard.txt'));
    const before = await storedImages(cold);
    const first = await cold.build(['-q', ctx]);
    expect(first.code, first.stderr).toBe(0);
    await expectNothingLeft(cold, before);
    const again = await cold.build([ctx]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/^#\d+ CACHED$/m);
    const noCache = await other.build(['-q', '--no-cache', ctx]);
    expect(noCache.code, noCache.stderr).toBe(0);
    expect(noCache.stdout.trim()).toBe(first.stdout.trim());
    const keys = async (ws: BuildWorkspace): Promise<string[]> => {
      const out: string[] = [];
      for (const shard of await readdir(join(ws.dataDir, 'cache'))) out.push(...(await readdir(join(ws.dataDir, 'cache', shard))));
      return out.sort();
    };
    expect(await keys(other)).toEqual(await keys(cold));
  });
});
