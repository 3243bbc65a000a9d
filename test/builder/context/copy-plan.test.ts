import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileIgnore } from '../../../builder/context/dockerignore.js';
import { digestCopyInputs, planCopy, type PlanCopyOptions } from '../../../builder/context/copy-plan.js';
import { isKilnError } from '../../../oci/errors.js';
import { age, makeTree, summary, tempDir, type Spec } from './helpers.js';

let base: string;
let done: () => Promise<void>;
let ctx: string;
let rootfs: string;

beforeEach(async () => {
  ({ dir: base, done } = await tempDir('kiln-copyplan-'));
  ctx = join(base, 'ctx');
  rootfs = join(base, 'rootfs');
  await makeTree(rootfs, { etc: { dir: true }, 'usr/bin': { dir: true }, bin: { link: 'usr/bin' }, 'etc/passwd': 'root:x:0:0' });
});
afterEach(async () => done());

async function plan(spec: Spec, opts: Partial<PlanCopyOptions> & { patterns: string[]; dest: string }, ignore?: string): Promise<string[]> {
  await makeTree(ctx, spec);
  const result = await planCopy({
    source: { root: ctx, name: 'context', ...(ignore === undefined ? {} : { ignore: compileIgnore(ignore) }) },
    workdir: '/',
    rootfs,
    parents: false,
    excludes: [],
    link: false,
    tmpDir: join(base, 'tmp'),
    ...opts,
  });
  return summary(result.entries);
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string; hint: string | undefined }> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!isKilnError(err)) throw new Error(`expected a KilnError, got ${String(err)}`);
  return { code: err.code, message: err.message, hint: err.hint };
}

describe('planCopy: sources and destinations', () => {
  it('copies a directory source\'s contents, not the directory itself', async () => {
    const got = await plan({ 'src/a.txt': 'A', 'src/sub/b.txt': 'B' }, { patterns: ['src'], dest: '/app' });
    expect(got).toEqual(['app directory 755 0:0', 'app/a.txt file 644 0:0 A', 'app/sub directory 755 0:0', 'app/sub/b.txt file 644 0:0 B']);
  });

  it('puts a file in dest/ under its base name, and at dest itself without the slash', async () => {
    expect(await plan({ 'f.txt': 'F' }, { patterns: ['f.txt'], dest: '/out/' })).toEqual(['out directory 755 0:0', 'out/f.txt file 644 0:0 F']);
    expect(await plan({}, { patterns: ['f.txt'], dest: '/out/renamed' })).toEqual(['out directory 755 0:0', 'out/renamed file 644 0:0 F']);
  });

  it('puts a file inside dest when dest is an existing directory of the rootfs', async () => {
    expect(await plan({ 'f.txt': 'F' }, { patterns: ['f.txt'], dest: '/etc' })).toEqual(['etc/f.txt file 644 0:0 F']);
  });

  it('resolves the destination through rootfs symlinks, never out of the rootfs', async () => {
    expect(await plan({ tool: 'T' }, { patterns: ['tool'], dest: '/bin/' })).toEqual(['usr/bin/tool file 644 0:0 T']);
    await makeTree(rootfs, { escape: { link: '../../../../tmp' } });
    expect(await plan({}, { patterns: ['tool'], dest: '/escape/' })).toEqual(['tmp directory 755 0:0', 'tmp/tool file 644 0:0 T']);
  });

  it('makes relative destinations relative to the workdir', async () => {
    expect(await plan({ f: 'F' }, { patterns: ['f'], dest: 'rel/', workdir: '/srv/app' })).toEqual([
      'srv directory 755 0:0', 'srv/app directory 755 0:0', 'srv/app/rel directory 755 0:0', 'srv/app/rel/f file 644 0:0 F',
    ]);
    expect(await plan({}, { patterns: ['f'], dest: '.', workdir: '/etc' })).toEqual(['etc/f file 644 0:0 F']);
  });

  it('expands globs per component (Go filepath.Match) and copies matched directories\' contents', async () => {
    const spec: Spec = { 'foo.go': 'foo', 'bar.go': 'bar', 'sub/dir1/dir2/foo': 'deep', 'x.txt': 'x' };
    expect(await plan(spec, { patterns: ['*.go'], dest: '/gofiles/' })).toEqual([
      'gofiles directory 755 0:0', 'gofiles/bar.go file 644 0:0 bar', 'gofiles/foo.go file 644 0:0 foo',
    ]);
    expect(await plan({}, { patterns: ['f*.go'], dest: '/foo2.go' })).toEqual(['foo2.go file 644 0:0 foo']);
    expect(await plan({}, { patterns: ['sub/*'], dest: '/subdest/' })).toEqual([
      'subdest directory 755 0:0', 'subdest/dir2 directory 755 0:0', 'subdest/dir2/foo file 644 0:0 deep',
    ]);
    expect(await plan({}, { patterns: ['sub/*/dir2/foo'], dest: '/subdest3/bar' })).toEqual(['subdest3 directory 755 0:0', 'subdest3/bar file 644 0:0 deep']);
  });

  it('requires a directory destination for several sources (or an existing directory)', async () => {
    const err = await failure(plan({ a: 'A', b: 'B' }, { patterns: ['a', 'b'], dest: '/one' }));
    expect(err.code).toBe('DOCKERFILE_INVALID');
    expect(err.message).toMatch(/more than one source file, the destination must be a directory and end with a "\/"/);
    expect(await plan({}, { patterns: ['a', 'b'], dest: '/etc' })).toEqual(['etc/a file 644 0:0 A', 'etc/b file 644 0:0 B']);
    expect(await plan({}, { patterns: ['[ab]'], dest: '/d/' })).toHaveLength(3);
  });

  it('fails when nothing matches at all, but allows an empty glob beside real sources (BuildKit)', async () => {
    const err = await failure(plan({ foo: 'F' }, { patterns: ['nomatch*'], dest: '/' }));
    expect(err.message).toBe('COPY failed: no source files were specified');
    expect(await plan({}, { patterns: ['foo', 'nomatch*'], dest: '/' })).toEqual(['foo file 644 0:0 F']);
  });

  it('reports a missing source as not found in the build context', async () => {
    const err = await failure(plan({}, { patterns: ['foo.txt'], dest: '/' }));
    expect(err).toMatchObject({ code: 'CONTEXT_INVALID', message: 'COPY failed: "foo.txt" not found in build context', hint: undefined });
  });

  it('treats a source excluded by .dockerignore as not found, with a hint', async () => {
    const err = await failure(plan({ 'secret.env': 's', keep: 'k' }, { patterns: ['secret.env'], dest: '/' }, '*.env\n'));
    expect(err.message).toBe('COPY failed: "secret.env" not found in build context');
    expect(err.hint).toMatch(/excluded by \.dockerignore/);
    expect(await plan({}, { patterns: ['.'], dest: '/app/' }, '*.env\n')).toEqual(['app directory 755 0:0', 'app/keep file 644 0:0 k']);
  });

  it('applies .dockerignore exceptions inside excluded directories', async () => {
    const got = await plan({ 'logs/a.log': 'a', 'logs/keep/b.log': 'b', 'main.c': 'm' }, { patterns: ['.'], dest: '/' }, 'logs\n!logs/keep\n');
    expect(got).toEqual(['logs directory 755 0:0', 'logs/keep directory 755 0:0', 'logs/keep/b.log file 644 0:0 b', 'main.c file 644 0:0 m']);
  });

  it('refuses sources outside the context, and treats a leading "/" as the context root', async () => {
    const err = await failure(plan({ x: 'X' }, { patterns: ['../x'], dest: '/' }));
    expect(err.code).toBe('CONTEXT_INVALID');
    expect(err.message).toMatch(/forbidden path outside the build context: "\.\.\/x"/);
    expect(await plan({}, { patterns: ['/x'], dest: '/y' })).toEqual(['y file 644 0:0 X']);
    expect(await plan({}, { patterns: ['sub/../x'], dest: '/z' })).toEqual(['z file 644 0:0 X']);
  });

  it('keeps symlinks inside a copied directory as symlinks', async () => {
    const got = await plan({ 'd/real': 'R', 'd/rel': { link: 'real' }, 'd/abs': { link: '/etc/passwd' } }, { patterns: ['d'], dest: '/o/' });
    expect(got).toEqual(['o directory 755 0:0', 'o/abs symlink 777 0:0 -> /etc/passwd', 'o/real file 644 0:0 R', 'o/rel symlink 777 0:0 -> real']);
  });

  it('follows a top-level symlink source within the context root', async () => {
    await makeTree(ctx, { 'data/v.txt': 'V', link: { link: 'data/v.txt' }, out: { link: '/data/v.txt' }, away: { link: '../../../etc/hostname' } });
    expect(await plan({}, { patterns: ['link'], dest: '/d/' })).toEqual(['d directory 755 0:0', 'd/link file 644 0:0 V']);
    expect(await plan({}, { patterns: ['out'], dest: '/e' })).toEqual(['e file 644 0:0 V']);
    const err = await failure(plan({}, { patterns: ['away'], dest: '/f' }));
    expect(err.message).toMatch(/"away" not found in build context/);
  });

  it('applies --chown to everything, including the directories it creates', async () => {
    const got = await plan({ 'd/f': 'F', 'd/s': { link: 'f' } }, { patterns: ['d'], dest: '/new/dir/', chown: { uid: 1000, gid: 1001 } });
    expect(got).toEqual([
      'new directory 755 1000:1001', 'new/dir directory 755 1000:1001', 'new/dir/f file 644 1000:1001 F', 'new/dir/s symlink 777 1000:1001 -> f',
    ]);
  });

  it('preserves file modes, uses 0:0 owners and keeps mtimes', async () => {
    await makeTree(ctx, { 'run.sh': { content: '#!', mode: 0o750 } });
    await age(join(ctx, 'run.sh'), 1_000_000);
    const result = await planCopy({ source: { root: ctx, name: 'context' }, patterns: ['run.sh'], dest: '/x', workdir: '/', rootfs, parents: false, excludes: [], link: false });
    expect(result.entries).toEqual([expect.objectContaining({ path: 'x', type: 'file', mode: 0o750, uid: 0, gid: 0, mtime: 1_000_000 })]);
  });

  it('applies --chmod: octal to files, dirs and created parents; symbolic per entry', async () => {
    const spec: Spec = { 'd/f': { content: 'F', mode: 0o600 }, 'd/x': { content: 'X', mode: 0o700 }, 'd/sub': { dir: true, mode: 0o700 } };
    expect(await plan(spec, { patterns: ['d'], dest: '/o/', chmod: '640' })).toEqual([
      'o directory 640 0:0', 'o/f file 640 0:0 F', 'o/sub directory 640 0:0', 'o/x file 640 0:0 X',
    ]);
    expect(await plan({}, { patterns: ['d'], dest: '/p/', chmod: 'u=rwX,go=rX' })).toEqual([
      'p directory 755 0:0', 'p/f file 644 0:0 F', 'p/sub directory 755 0:0', 'p/x file 755 0:0 X',
    ]);
    const err = await failure(plan({}, { patterns: ['d'], dest: '/q/', chmod: '8' }));
    expect(err.message).toMatch(/invalid chmod parameter: '8'/);
  });

  it('--parents keeps the relative path, and a "/./" pivot limits it', async () => {
    const spec: Spec = { 'x/a.txt': 'xa', 'y/a.txt': 'ya', 'x/y/b.txt': 'xyb', 'x/y/c.md': 'md' };
    expect(await plan(spec, { patterns: ['x/a.txt', 'y/a.txt'], dest: '/parents/', parents: true })).toEqual([
      'parents directory 755 0:0', 'parents/x directory 755 0:0', 'parents/x/a.txt file 644 0:0 xa', 'parents/y directory 755 0:0', 'parents/y/a.txt file 644 0:0 ya',
    ]);
    expect(await plan({}, { patterns: ['./x/./y/*.txt'], dest: '/p/', parents: true })).toEqual([
      'p directory 755 0:0', 'p/y directory 755 0:0', 'p/y/b.txt file 644 0:0 xyb',
    ]);
    expect(await plan({}, { patterns: ['x/**/*.txt'], dest: '/q/', parents: true })).toEqual([
      'q directory 755 0:0', 'q/x directory 755 0:0', 'q/x/a.txt file 644 0:0 xa', 'q/x/y directory 755 0:0', 'q/x/y/b.txt file 644 0:0 xyb',
    ]);
    const err = await failure(plan({}, { patterns: ['x/missing.txt'], dest: '/r/', parents: true }));
    expect(err.message).toMatch(/"x\/missing.txt" not found/);
  });

  it('--exclude filters paths relative to each source, and what a wildcard matched', async () => {
    const spec: Spec = { 'dir1/a.png': '1', 'dir1/b.txt': '2', 'dir3/c.mp3': '3', 'dir3/d.mpeg': '4', 'home.txt': 'h', 'home.md': 'm' };
    expect(await plan(spec, { patterns: ['.'], dest: '/1/', excludes: ['*/*.png', '*/*.mp3'] })).toEqual([
      '1 directory 755 0:0', '1/dir1 directory 755 0:0', '1/dir1/b.txt file 644 0:0 2', '1/dir3 directory 755 0:0', '1/dir3/d.mpeg file 644 0:0 4',
      '1/home.md file 644 0:0 m', '1/home.txt file 644 0:0 h',
    ]);
    expect(await plan({}, { patterns: ['dir*'], dest: '/4/', excludes: ['*.png', '*.txt', '*.mp3'] })).toEqual(['4 directory 755 0:0', '4/d.mpeg file 644 0:0 4']);
    expect(await plan({}, { patterns: ['hom*'], dest: '/5/', excludes: ['*.txt'] })).toEqual(['5 directory 755 0:0', '5/home.md file 644 0:0 m']);
  });

  it('--link plans onto an empty tree, ignoring the rootfs', async () => {
    expect(await plan({ t: 'T' }, { patterns: ['t'], dest: '/bin/', link: true })).toEqual(['bin directory 755 0:0', 'bin/t file 644 0:0 T']);
  });

  it('refuses a directory over a rootfs file and a file over a rootfs directory', async () => {
    expect((await failure(plan({ 'd/passwd/x': 'X' }, { patterns: ['d'], dest: '/etc/' }))).message).toMatch(/cannot copy to non-directory: \/etc\/passwd/);
    expect((await failure(plan({ 'e/usr': 'U' }, { patterns: ['e'], dest: '/' }))).message).toMatch(/cannot replace directory \/usr with a file/);
  });

  it('keeps hard links inside one copy as hard links', async () => {
    await makeTree(ctx, { 'h/a': 'same' });
    const { link } = await import('node:fs/promises');
    await link(join(ctx, 'h/a'), join(ctx, 'h/b'));
    expect(await plan({}, { patterns: ['h'], dest: '/h/' })).toEqual(['h directory 755 0:0', 'h/a file 644 0:0 same', 'h/b hardlink 644 0:0 -> h/a']);
  });

  it('writes heredoc files (0644) at dest or in dest/', async () => {
    const got = await plan({}, { patterns: [], dest: '/scripts/', inline: [{ name: 'run.sh', content: Buffer.from('echo hi\n') }], chmod: '755' });
    expect(got).toEqual(['scripts directory 755 0:0', 'scripts/run.sh file 755 0:0 echo hi\n']);
    expect(await plan({}, { patterns: [], dest: '/x.conf', inline: [{ name: 'EOF', content: Buffer.from('k=v') }] })).toEqual(['x.conf file 644 0:0 k=v']);
  });

  it('refuses URLs for COPY and Git sources for ADD with clear messages', async () => {
    expect((await failure(plan({}, { patterns: ['https://example.com/x'], dest: '/' }))).message).toMatch(/can't be a URL for COPY/);
    const git = await failure(plan({}, { patterns: ['https://github.com/moby/buildkit.git#v0.10'], dest: '/', add: { tmpDir: join(base, 'tmp'), epoch: 0 } }));
    expect(git.code).toBe('UNSUPPORTED');
    expect(git.message).toMatch(/Git sources are not supported/);
  });
});

describe('inputs digest', () => {
  it('is the same with and without a rootfs, and changes with content, mode, options and names', async () => {
    await makeTree(ctx, { 'd/a': 'A', 'd/l': { link: 'a' } });
    const opts = { source: { root: ctx, name: 'context' }, patterns: ['d'], dest: '/o/', workdir: '/', parents: false, excludes: [], link: false };
    const d1 = await digestCopyInputs(opts);
    expect((await planCopy({ ...opts, rootfs })).inputsDigest).toBe(d1);
    expect(d1).toMatch(/^[a-f0-9]{64}$/);
    await makeTree(ctx, { 'd/a': 'B' });
    const d2 = await digestCopyInputs(opts);
    expect(d2).not.toBe(d1);
    expect(await digestCopyInputs({ ...opts, dest: '/p/' })).not.toBe(d2);
    expect(await digestCopyInputs({ ...opts, chown: { uid: 1, gid: 1 } })).not.toBe(d2);
    const { rm, symlink, chmod } = await import('node:fs/promises');
    await rm(join(ctx, 'd/l'));
    await symlink('b', join(ctx, 'd/l'));
    const d3 = await digestCopyInputs(opts);
    expect(d3).not.toBe(d2);
    await chmod(join(ctx, 'd/a'), 0o600);
    expect(await digestCopyInputs(opts)).not.toBe(d3);
  });

  it('reads no unchanged file content when a stat cache is given', async () => {
    const { StatCache } = await import('../../../builder/context/stat-cache.js');
    await makeTree(ctx, { 'a.txt': 'A', 'b.txt': 'B' });
    await age(join(ctx, 'a.txt'), 1_000_000);
    await age(join(ctx, 'b.txt'), 1_000_000);
    const cacheDir = join(base, 'cache');
    const first = await StatCache.open({ dir: cacheDir, root: ctx });
    const opts = { source: { root: ctx, name: 'context', statCache: first }, patterns: ['*.txt'], dest: '/t/', workdir: '/', parents: false, excludes: [], link: false };
    const d1 = await digestCopyInputs(opts);
    await first.save();
    const second = await StatCache.open({ dir: cacheDir, root: ctx });
    expect(await digestCopyInputs({ ...opts, source: { ...opts.source, statCache: second } })).toBe(d1);
    expect([second.hits, second.misses]).toEqual([2, 0]);
  });
});
