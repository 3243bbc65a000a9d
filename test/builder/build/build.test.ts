import { readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, listTree, mountsUnder, readLayoutImage, tarNames, type BuildWorkspace } from '../../support/build-fixture.js';

const MULTI_STAGE = `# a multi-stage build
ARG VERSION=1.0
FROM busybox AS gen
ARG VERSION
RUN mkdir -p /out && echo "generated $VERSION" > /out/gen.txt
FROM busybox
ARG GREETING=hi
ENV APP=/app
WORKDIR $APP
COPY hello.txt sub ./
COPY --from=gen /out/gen.txt /app/
RUN echo "$GREETING" > greeting && rm /bin/uname
USER 1000:1000
EXPOSE 8080 53/udp
VOLUME /data
LABEL org.example.name=demo
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/cat"]
CMD ["/app/greeting"]
`;

let ws: BuildWorkspace;
let ctx: string;

beforeAll(async () => {
  ws = await buildWorkspace();
  ctx = await ws.context({ 'hello.txt': 'hello\n', 'sub/a.txt': 'a\n', Dockerfile: MULTI_STAGE });
});
afterAll(async () => ws.cleanup());

describe('kiln build: a multi-stage build', () => {
  let digest: string;
  let image: Awaited<ReturnType<typeof readLayoutImage>>;

  beforeAll(async () => {
    const r = await ws.build(['-t', 'demo/app:1', '--output', `type=oci,dest=${join(ws.dir, 'out')},tar=false`, ctx]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    digest = r.stdout.trim();
    image = await readLayoutImage(join(ws.dir, 'out'));
  });

  it('prints the manifest digest and records every config field the Dockerfile set', () => {
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    const config = image.config.config as Record<string, unknown>;
    expect(config.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'APP=/app']);
    expect(config.WorkingDir).toBe('/app');
    expect(config.User).toBe('1000:1000');
    expect(config.ExposedPorts).toEqual({ '8080/tcp': {}, '53/udp': {} });
    expect(config.Volumes).toEqual({ '/data': {} });
    expect(config.Labels).toEqual({ 'org.example.name': 'demo' });
    expect(config.StopSignal).toBe('SIGTERM');
    expect(config.Entrypoint).toEqual(['/bin/cat']);
    expect(config.Cmd).toEqual(['/app/greeting']);
    expect(image.config.created).toBe('1970-01-01T00:00:00Z');
  });

  it('writes one history entry per instruction, empty_layer for config-only ones', () => {
    const history = image.config.history as { created_by: string; empty_layer?: boolean }[];
    const built = history.slice(1).map((h) => [h.created_by.split(' ')[0], h.empty_layer === true]);
    expect(built).toEqual([
      ['ENV', true],
      ['WORKDIR', false],
      ['COPY', false],
      ['COPY', false],
      ['RUN', false],
      ['USER', true],
      ['EXPOSE', true],
      ['VOLUME', true],
      ['LABEL', true],
      ['STOPSIGNAL', true],
      ['ENTRYPOINT', true],
      ['CMD', true],
    ]);
    const layers = history.filter((h) => !h.empty_layer).length;
    expect(layers).toBe(image.layers.length);
  });

  it('layers hold exactly the change: copied files, the other stage\'s output, a whiteout for a deleted file', () => {
    const names = image.layers.map(tarNames);
    expect(names[2]).toEqual(expect.arrayContaining(['app/hello.txt', 'app/a.txt']));
    expect(names[3]).toEqual(expect.arrayContaining(['app/gen.txt']));
    expect(names[4]).toEqual(expect.arrayContaining(['app/greeting', 'bin/.wh.uname']));
    expect(names[4]).not.toContain('proc/');
    expect(names.flat().some((n) => n.startsWith('etc/hosts') || n.startsWith('dev/'))).toBe(false);
    expect(image.layers[3]!.toString('latin1')).toContain('generated 1.0');
  });

  it('a rebuild with nothing changed runs nothing and gives the same digest', async () => {
    const r = await ws.build(['-t', 'demo/app:1', ctx]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
    const steps = r.stderr.split('\n').filter((l) => /^#\d+ \[/.test(l)).length;
    const cached = r.stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l)).length;
    expect(steps).toBe(5);
    expect(cached).toBe(5);
  });

  it('changing one file rebuilds from the first step that reads it', async () => {
    const other = await ws.context({ 'hello.txt': 'hello\n', 'sub/a.txt': 'a\n', Dockerfile: MULTI_STAGE }, 'changed');
    await writeFile(join(other, 'sub/a.txt'), 'changed\n');
    const r = await ws.build([other]);
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n');
    const cachedSteps = lines.filter((l) => /^#\d+ CACHED$/.test(l)).map((l) => l.split(' ')[0] ?? '');
    const stepText = (id: string): string => lines.find((l) => l.startsWith(`${id} [`)) ?? '';
    const cachedTexts = cachedSteps.map(stepText);
    expect(cachedTexts.some((t) => t.includes('WORKDIR'))).toBe(true);
    expect(cachedTexts.some((t) => t.includes('COPY hello.txt'))).toBe(false);
    expect(cachedTexts.some((t) => t.includes('echo "$GREETING"'))).toBe(false);
    expect(r.stdout.trim()).not.toBe(digest);
  });

  it('--no-cache runs every step again and still gives the same digest (reproducible RUN and COPY layers)', async () => {
    const r = await ws.build(['--no-cache', ctx]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/CACHED/);
    expect(r.stdout.trim()).toBe(digest);
  });

  it('same inputs in another directory, with other mtimes, another store and a later time: the same digest', async () => {
    const elsewhere = await ws.context({ 'hello.txt': 'hello\n', 'sub/a.txt': 'a\n', Dockerfile: MULTI_STAGE }, 'elsewhere/deeper');
    await utimes(join(elsewhere, 'hello.txt'), new Date('2020-01-01'), new Date('2021-05-05'));
    const r = await ws.build([elsewhere], { env: { KILN_DATA_DIR: join(ws.dir, 'other-store') } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(digest);
  });

  it('a build arg changes the RUN that uses it, and SOURCE_DATE_EPOCH sets created', async () => {
    const r = await ws.build(['--build-arg', 'GREETING=hey', '--source-date-epoch', '1700000000', '--output', `type=oci,dest=${join(ws.dir, 'out2')},tar=false`, ctx]);
    expect(r.code).toBe(0);
    const img = await readLayoutImage(join(ws.dir, 'out2'));
    expect(img.config.created).toBe('2023-11-14T22:13:20Z');
    expect(img.layers[4]!.toString('latin1')).toContain('hey\n');
  });

  it('leaves no mounts and no scratch directories behind', async () => {
    expect(await mountsUnder(ws.dir)).toEqual([]);
    expect(await listTree(join(ws.dataDir, 'tmp'))).toEqual([]);
  });

  it('the image is in the local store under its -t name', async () => {
    const r = await ws.kiln(['images', '--format', 'json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { name: string; digest: string }[];
    expect(rows).toContainEqual(expect.objectContaining({ name: 'docker.io/demo/app:1', digest }));
    await rm(join(ws.dir, 'out2'), { recursive: true, force: true });
    expect((await readFile(join(ws.dir, 'out', 'index.json'), 'utf8')).length).toBeGreaterThan(0);
  });
});
