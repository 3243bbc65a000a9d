import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, listTree, type BuildWorkspace } from '../../support/build-fixture.js';
import { buildFiles, buildImage, expectNothingLeft, ownHistory, storedImages, type BuiltImage } from './helpers.js';

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('RUN --mount=type=cache', () => {
  const df = [
    'FROM busybox',
    'RUN --mount=type=cache,target=/cache echo run >> /cache/log && cat /cache/log > /seen',
    'RUN --mount=type=cache,id=shared,target=/a echo via-a > /a/f',
    'RUN --mount=type=cache,id=shared,target=/b cat /b/f > /shared',
    '',
  ].join('\n');

  it('keeps its content across builds, even when --no-cache reruns the step; never lands in a layer', async () => {
    const ctx = await ws.context({ Dockerfile: df });
    const first = await buildImage(ws, ['--no-cache', ctx]);
    const second = await buildImage(ws, ['--no-cache', ctx]);
    expect(first.text('seen')).toBe('run\n');
    expect(second.text('seen')).toBe('run\nrun\n');
    const names = second.layers.flat().map((m) => m.name);
    expect(names.some((n) => n.startsWith('cache/') || n.startsWith('a/') || n.startsWith('b/'))).toBe(false);
  });

  it('the same id is the same cache, whatever the target', async () => {
    const img = await buildFiles(ws, { Dockerfile: df });
    expect(img.text('shared')).toBe('via-a\n');
  });
});

describe('RUN --mount=type=secret', () => {
  const fileSecret = 'file-secret-value-4f9c2a81';
  const envSecret = 'env-secret-value-7d3e5b60';
  let image: BuiltImage;
  let secretFile: string;

  beforeAll(async () => {
    secretFile = join(ws.dir, 'token.txt');
    await writeFile(secretFile, fileSecret);
    const df = [
      'FROM busybox',
      'RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -d" " -f1 > /default-target',
      'RUN --mount=type=secret,id=tok,target=/etc/app/tok,mode=0440 sha256sum /etc/app/tok | cut -d" " -f1 > /custom-target && stat -c %a /etc/app/tok > /mode',
      'RUN --mount=type=secret,id=envtok,env=TOKEN printf %s "$TOKEN" | sha256sum | cut -d" " -f1 > /env-secret',
      'RUN --mount=type=secret,id=absent if [ -e /run/secrets/absent ]; then echo present; else echo absent; fi > /optional',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: df }, ['--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=KILN_TEST_TOKEN'], { env: { KILN_TEST_TOKEN: envSecret } });
  });

  it('the RUN sees the file secret at /run/secrets/ID or at target=, with its mode', () => {
    expect(image.text('default-target')).toBe(`${sha(fileSecret)}\n`);
    expect(image.text('custom-target')).toBe(`${sha(fileSecret)}\n`);
    expect(image.text('mode')).toBe('440\n');
  });

  it('env= exposes the secret as an environment variable', () => {
    expect(image.text('env-secret')).toBe(`${sha(envSecret)}\n`);
  });

  it('a secret that was not given is simply absent unless required', () => {
    expect(image.text('optional')).toBe('absent\n');
  });

  it('the values reach no layer, no config, no history, no file of the store', async () => {
    const everything = [...image.layerBytes, image.configBytes];
    for (const bytes of everything) {
      expect(bytes.includes(fileSecret)).toBe(false);
      expect(bytes.includes(envSecret)).toBe(false);
    }
    expect(JSON.stringify(ownHistory(image))).not.toMatch(/secret-value/);
    for (const rel of await listTree(ws.dataDir)) {
      const data = await readFile(join(ws.dataDir, rel)).catch(() => Buffer.alloc(0));
      expect(data.includes(fileSecret), rel).toBe(false);
      expect(data.includes(envSecret), rel).toBe(false);
    }
    const names = image.layers.flat().map((m) => m.name);
    expect(names.some((n) => n.startsWith('run/') || n.startsWith('etc/app'))).toBe(false);
  });

  it('a required secret that was not given fails the build, naming it', async () => {
    const before = await storedImages(ws);
    const ctx = await ws.context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=needed,required true\n' });
    const r = await ws.build(['-t', 'nosecret:1', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Dockerfile:2');
    expect(r.stderr).toContain('needed');
    await expectNothingLeft(ws, before);
  });
});

describe('RUN --mount=type=bind', () => {
  let image: BuiltImage;
  let ctx: string;

  beforeAll(async () => {
    const df = [
      'FROM busybox AS src',
      'RUN echo from-stage > /data.txt',
      'FROM busybox',
      'RUN --mount=type=bind,from=src,source=/data.txt,target=/mnt/d.txt cat /mnt/d.txt > /from-stage',
      'RUN --mount=type=bind,source=sub,target=/ctx cat /ctx/c.txt > /from-context',
      'RUN --mount=type=bind,target=/ctx if touch /ctx/new 2>/dev/null; then echo writable; else echo read-only; fi > /ro',
      'RUN --mount=type=bind,target=/ctx,rw echo w > /ctx/written && cat /ctx/written > /rw',
      '',
    ].join('\n');
    ctx = await ws.context({ Dockerfile: df, 'sub/c.txt': 'context file\n' });
    image = await buildImage(ws, [ctx]);
  });

  it('mounts a file of another stage and a directory of the context', () => {
    expect(image.text('from-stage')).toBe('from-stage\n');
    expect(image.text('from-context')).toBe('context file\n');
  });

  it('is read-only by default', () => {
    expect(image.text('ro')).toBe('read-only\n');
  });

  it('with rw, writes succeed but land neither in the layer nor in the context', async () => {
    expect(image.text('rw')).toBe('w\n');
    const names = image.layers.flat().map((m) => m.name);
    expect(names.some((n) => n.startsWith('ctx') || n.startsWith('mnt'))).toBe(false);
    expect((await readdir(ctx)).sort()).toEqual(['Dockerfile', 'sub']);
  });
});

describe('RUN --mount=type=tmpfs and --network', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const df = [
      'FROM busybox',
      'RUN --mount=type=tmpfs,target=/scratch echo t > /scratch/t && grep " /scratch " /proc/mounts | cut -d" " -f3 > /tmpfs-type',
      'RUN --mount=type=tmpfs,target=/dev/work echo under-dev > /dev/work/f && cat /dev/work/f > /dev-tmpfs',
      'RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " > /net-none',
      'RUN --network=host tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort > /net-host',
      'RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | sort > /net-default',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: df });
  });

  it('a tmpfs mount is a tmpfs, and what is written there is not in the layer', () => {
    expect(image.text('tmpfs-type')).toBe('tmpfs\n');
    expect(image.layers.flat().some((m) => m.name.startsWith('scratch'))).toBe(false);
  });

  it('a mount below the RUN\'s own /dev works and leaves nothing in the layer', () => {
    expect(image.text('dev-tmpfs')).toBe('under-dev\n');
    expect(image.layers.flat().some((m) => m.name === 'dev/' || m.name.startsWith('dev/'))).toBe(false);
  });

  it('--network=none has only the loopback interface', () => {
    expect(image.text('net-none')).toBe('lo\n');
  });

  it('--network=host and the default share the host\'s interfaces', async () => {
    const host = (await readFile('/proc/net/dev', 'utf8')).split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    expect(image.text('net-host').trim().split('\n')).toEqual(host);
    expect(image.text('net-default').trim().split('\n')).toEqual(host);
  });
});
