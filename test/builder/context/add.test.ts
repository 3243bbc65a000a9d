import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { planCopy, type PlanCopyOptions } from '../../../builder/context/copy-plan.js';
import { isKilnError } from '../../../oci/errors.js';
import { makeTree, summary, tempDir } from './helpers.js';
import { compress, hasTool, makeTar } from './tar-fixtures.js';

let base: string;
let done: () => Promise<void>;
let ctx: string;
let rootfs: string;

beforeEach(async () => {
  ({ dir: base, done } = await tempDir('kiln-add-'));
  ctx = join(base, 'ctx');
  rootfs = join(base, 'rootfs');
  await makeTree(rootfs, { etc: { dir: true } });
  await makeTree(ctx, {});
});
afterEach(async () => done());

function add(opts: Partial<PlanCopyOptions> & { patterns: string[]; dest: string }): Promise<string[]> {
  return planCopy({
    source: { root: ctx, name: 'context' },
    workdir: '/',
    rootfs,
    parents: false,
    excludes: [],
    link: false,
    add: { tmpDir: join(base, 'tmp'), epoch: 1234 },
    ...opts,
  }).then((p) => summary(p.entries));
}

const members = [
  { name: 'app/', type: 'directory' as const, mode: 0o750, uid: 7, gid: 8 },
  { name: 'app/run.sh', content: 'echo', mode: 0o755, uid: 7, gid: 8 },
  { name: 'app/link', type: 'symlink' as const, linkname: '/usr/bin/env' },
  { name: 'app/hard', type: 'link' as const, linkname: 'app/run.sh' },
];
const extracted = [
  'opt directory 755 0:0', 'opt/app directory 750 7:8', 'opt/app/run.sh file 755 7:8 echo', 'opt/app/link symlink 777 0:0 -> /usr/bin/env',
  'opt/app/hard hardlink 644 0:0 -> opt/app/run.sh',
];

describe('ADD local archives', () => {
  it.each(['none', 'gzip', 'xz', 'bzip2', 'zstd'] as const)('extracts a %s tar into dest, detected by content', async (kind) => {
    if (kind !== 'none' && kind !== 'gzip' && !hasTool(kind)) return expect(hasTool(kind)).toBe(false);
    await writeFile(join(ctx, 'bundle.bin'), compress(await makeTar(members), kind));
    expect(await add({ patterns: ['bundle.bin'], dest: '/opt' })).toEqual(extracted);
  });

  it('applies --chown to members and keeps their modes', async () => {
    await writeFile(join(ctx, 'b.tgz'), compress(await makeTar(members), 'gzip'));
    const got = await add({ patterns: ['b.tgz'], dest: '/opt/', chown: { uid: 1, gid: 2 } });
    expect(got).toContain('opt/app/run.sh file 755 1:2 echo');
    expect(got).toContain('opt/app directory 750 1:2');
  });

  it('copies a file named like an archive that is not one, and COPY never extracts', async () => {
    await writeFile(join(ctx, 'fake.tar.gz'), 'not a tar');
    expect(await add({ patterns: ['fake.tar.gz'], dest: '/x/' })).toEqual(['x directory 755 0:0', 'x/fake.tar.gz file 644 0:0 not a tar']);
    await writeFile(join(ctx, 'real.tar'), await makeTar(members));
    const copied = await planCopy({ source: { root: ctx, name: 'context' }, patterns: ['real.tar'], dest: '/y/', workdir: '/', rootfs, parents: false, excludes: [], link: false });
    expect(copied.entries.map((e) => e.path)).toEqual(['y', 'y/real.tar']);
  });

  it.each([
    [[{ name: '../evil', content: 'x' }], /escapes the archive/],
    [[{ name: 'l', type: 'symlink' as const, linkname: '/etc' }, { name: 'l/passwd', content: 'x' }], /below the symlink l/],
    [[{ name: 'dev', type: 'character-device' as const }], /character-device; only files/],
    [[{ name: 'h', type: 'link' as const, linkname: 'nothere' }], /not an earlier file/],
  ])('refuses unsafe members (%#)', async (bad, message) => {
    await writeFile(join(ctx, 'bad.tar'), await makeTar(bad));
    const err = await add({ patterns: ['bad.tar'], dest: '/' }).then(() => undefined, (e: unknown) => e);
    expect(isKilnError(err, 'UNSAFE_PATH')).toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe('ADD URLs', () => {
  let server: Server;
  let url: string;
  const body = 'downloaded bytes';
  const sha = createHash('sha256').update(body).digest('hex');
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/missing') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('downloads to dest/<name from the URL>, mode 0600, mtime from Last-Modified, not extracted', async () => {
    const plan = await planCopy({
      source: { root: ctx, name: 'context' }, patterns: [`${url}/files/tool.tar.gz`], dest: '/dl/', workdir: '/', rootfs, parents: false, excludes: [], link: false,
      add: { tmpDir: join(base, 'tmp'), epoch: 0, checksum: `sha256:${sha}` },
    });
    expect(await summary(plan.entries)).toEqual(['dl directory 755 0:0', `dl/tool.tar.gz file 600 0:0 ${body}`]);
    expect(plan.entries[1]).toMatchObject({ mtime: Date.parse('2015-10-21T07:28:00Z') / 1000 });
    expect(await add({ patterns: [`${url}/x`], dest: '/named' })).toEqual([`named file 600 0:0 ${body}`]);
    expect(await add({ patterns: [`${url}/`], dest: '/d/' })).toContain(`d/__unnamed__ file 600 0:0 ${body}`);
  });

  it('verifies --checksum before use and reports HTTP errors', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const mismatch = await add({ patterns: [`${url}/a`], dest: '/', add: { tmpDir: join(base, 'tmp'), epoch: 0, checksum: wrong } }).catch((e: unknown) => e);
    expect((mismatch as Error).message).toMatch(/checksum mismatch/);
    const notFound = await add({ patterns: [`${url}/missing`], dest: '/' }).catch((e: unknown) => e);
    expect((notFound as Error).message).toMatch(/answered 404/);
    const badSum = await add({ patterns: [`${url}/a`], dest: '/', add: { tmpDir: join(base, 'tmp'), epoch: 0, checksum: 'md5:abc' } }).catch((e: unknown) => e);
    expect((badSum as Error).message).toMatch(/invalid --checksum/);
  });
});
