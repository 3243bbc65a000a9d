import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, readLayoutImage, type BuildWorkspace } from '../../support/build-fixture.js';
import { run } from '../../support/kiln.js';
import { requirePeer } from '../../support/peers.js';
import { buildFiles, buildImage, stepLines, tarMembers, type BuiltImage } from './helpers.js';

const KILN = fileURLToPath(new URL('../../../bin/kiln.js', import.meta.url));

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

const STAGES = [
  'FROM busybox AS first',
  'RUN echo first > /first.txt',
  'FROM busybox AS named',
  'RUN echo named > /named.txt',
  'FROM named AS derived',
  'RUN echo derived > /derived.txt',
  'FROM busybox AS unused',
  'RUN echo unused-step-ran > /unused.txt',
  'FROM busybox',
  'COPY --from=0 /first.txt /got/',
  'COPY --from=named /named.txt /got/',
  'COPY --from=derived /derived.txt /got/',
  '',
].join('\n');

describe('multi-stage builds', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    image = await buildFiles(ws, { Dockerfile: STAGES });
  });

  it('COPY --from an index, a name, and a stage built FROM an earlier stage', () => {
    expect(image.text('got/first.txt')).toBe('first\n');
    expect(image.text('got/named.txt')).toBe('named\n');
    expect(image.text('got/derived.txt')).toBe('derived\n');
  });

  it('builds the independent stages it needs and skips the stage nothing uses', () => {
    const steps = stepLines(image.run.stderr).join('\n');
    expect(steps).toContain('echo first');
    expect(steps).toContain('echo named');
    expect(steps).toContain('echo derived');
    expect(image.run.stderr).not.toContain('unused-step-ran');
  });

  it('only the final stage\'s layers are in the image', () => {
    expect(image.layers.length).toBe(4);
    expect(image.file('first.txt')).toBeUndefined();
    expect(image.file('named.txt')).toBeUndefined();
  });

  it('--target picks a middle stage: its ancestors are built, nothing after or beside it', async () => {
    const img = await buildFiles(ws, { Dockerfile: STAGES }, ['--target', 'derived', '--no-cache']);
    const steps = stepLines(img.run.stderr).join('\n');
    expect(steps).toContain('echo named');
    expect(steps).toContain('echo derived');
    expect(steps).not.toContain('echo first');
    expect(steps).not.toContain('unused');
    expect(steps).not.toContain('COPY');
    expect(img.text('named.txt')).toBe('named\n');
    expect(img.text('derived.txt')).toBe('derived\n');
    expect(img.layers.length).toBe(3);
  });
});

describe('whiteouts', () => {
  let layer: ReturnType<typeof tarMembers>;

  beforeAll(async () => {
    const df = [
      'FROM busybox',
      'RUN mkdir -p /d/sub && echo x > /d/sub/f && echo y > /d/keep',
      'RUN rm /bin/uname && rm -rf /home && rm -rf /d && mkdir /d && echo new > /d/new',
      '',
    ].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df });
    layer = img.layers[2]!;
  });

  it('a deleted file or directory becomes a .wh. entry', () => {
    const names = layer.map((m) => m.name);
    expect(names).toContain('bin/.wh.uname');
    expect(names).toContain('.wh.home');
    expect(names).not.toContain('home/');
  });

  it('a directory removed and made again is opaque: .wh..wh..opq, then its new content only', () => {
    const names = layer.map((m) => m.name.replace(/\/$/, ''));
    expect(names).toContain('d/.wh..wh..opq');
    expect(names).toContain('d/new');
    expect(names.filter((n) => n.startsWith('d/'))).toEqual(['d/.wh..wh..opq', 'd/new']);
  });
});

describe('context sources', () => {
  it('a tar on stdin is the context (`-`), its Dockerfile inside', async () => {
    const tar = requirePeer('tar', 'tar');
    const ctx = await ws.context({ Dockerfile: 'FROM busybox\nCOPY a.txt /from-stdin/\n', 'a.txt': 'streamed\n' });
    const archive = join(ws.dir, 'ctx.tar');
    const made = await run(tar, ['-C', ctx, '-cf', archive, '.']);
    expect(made.code).toBe(0);
    const out = join(ws.dir, 'stdin-out');
    const r = await run('/bin/sh', ['-c', `"$0" "$1" build --progress plain --build-context "$2" --output "type=oci,dest=$3,tar=false" - < "$4"`, process.execPath, KILN, `busybox=${ws.baseContext}`, out, archive], {
      env: { ...process.env, CI: 'true', NO_COLOR: '1', KILN_DATA_DIR: ws.dataDir },
    });
    expect(r.code, r.stderr).toBe(0);
    const img = await readLayoutImage(out);
    const file = img.layers.map(tarMembers).flat().find((m) => m.name === 'from-stdin/a.txt');
    expect(file?.content.toString()).toBe('streamed\n');
  });

  it('-f names a Dockerfile outside the context', async () => {
    const ctx = await ws.context({ 'b.txt': 'beside\n' });
    const elsewhere = join(ws.dir, 'Dockerfile.elsewhere');
    await writeFile(elsewhere, 'FROM busybox\nCOPY b.txt /\n');
    const img = await buildImage(ws, ['-f', elsewhere, ctx]);
    expect(img.text('b.txt')).toBe('beside\n');
  });
});
