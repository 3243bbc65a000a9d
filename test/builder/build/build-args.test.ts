import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';
import { buildFiles, HOST_ARCH, OTHER_ARCH, ownHistory, type BuiltImage } from './helpers.js';

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

const SCOPES = [
  'ARG BASE=busybox',
  'ARG GLOBAL=g1',
  'ARG REDEFAULT=global-default',
  'ARG NOT_REDECLARED=hidden',
  'FROM $BASE',
  'ARG GLOBAL',
  'ARG REDEFAULT=stage-default',
  'ARG LOCAL=l1',
  'ARG FROMENV',
  'RUN echo "global=$GLOBAL redefault=$REDEFAULT local=$LOCAL hidden=${NOT_REDECLARED:-unset} fromenv=${FROMENV:-unset}" > /args',
  '',
].join('\n');

describe('ARG scoping', () => {
  it('a global ARG names the base image; a stage sees globals only when it re-declares them', async () => {
    const img = await buildFiles(ws, { Dockerfile: SCOPES });
    expect(img.text('args')).toBe('global=g1 redefault=stage-default local=l1 hidden=unset fromenv=unset\n');
  });

  it('--build-arg overrides global and stage defaults; a bare --build-arg K reads the environment', async () => {
    const img = await buildFiles(ws, { Dockerfile: SCOPES }, ['--build-arg', 'GLOBAL=cli', '--build-arg', 'LOCAL=cli-local', '--build-arg', 'REDEFAULT=cli-re', '--build-arg', 'FROMENV'], {
      env: { FROMENV: 'from-the-environment' },
    });
    expect(img.text('args')).toBe('global=cli redefault=cli-re local=cli-local hidden=unset fromenv=from-the-environment\n');
  });

  it('ARGs reach RUN\'s environment and the history, but not the image config', async () => {
    const img = await buildFiles(ws, { Dockerfile: ['FROM busybox', 'ARG SECRETLESS=visible', 'RUN env > /env', ''].join('\n') });
    expect(img.text('env').split('\n')).toContain('SECRETLESS=visible');
    expect((img.cc.Env as string[]).some((e) => e.startsWith('SECRETLESS'))).toBe(false);
    expect(ownHistory(img).find((h) => h.created_by.startsWith('RUN'))?.created_by).toContain('SECRETLESS=visible');
  });

  it('ENV wins over an ARG of the same name, in expansion and in RUN', async () => {
    const df = ['FROM busybox', 'ARG X=from-arg', 'ENV X=from-env', 'LABEL x=$X', 'RUN echo "$X" > /x', ''].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df }, ['--build-arg', 'X=from-cli']);
    expect(img.cc.Labels).toEqual({ x: 'from-env' });
    expect(img.text('x')).toBe('from-env\n');
  });

  it('an ARG default may use earlier ARGs and ENV', async () => {
    const df = ['FROM busybox', 'ENV ROOT=/opt', 'ARG A=one', 'ARG B=${A}-two', 'ARG DIR=$ROOT/$B', 'WORKDIR $DIR', ''].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df });
    expect(img.cc.WorkingDir).toBe('/opt/one-two');
  });
});

describe('platform args', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const df = [
      'FROM busybox',
      'RUN echo "before=${TARGETARCH:-unset}" > /platform',
      'ARG TARGETARCH',
      'ARG TARGETPLATFORM',
      'ARG BUILDPLATFORM',
      'ARG TARGETOS',
      'RUN echo "after=$TARGETARCH $TARGETPLATFORM $BUILDPLATFORM $TARGETOS" >> /platform',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: df });
  });

  it('TARGET*/BUILD* are invisible until the stage declares them with ARG', () => {
    expect(image.text('platform')).toBe(`before=unset\nafter=${HOST_ARCH} linux/${HOST_ARCH} linux/${HOST_ARCH} linux\n`);
  });

  it('FROM --platform=$BUILDPLATFORM runs a build-platform stage inside a build for another target', async () => {
    const df = [
      'FROM --platform=$BUILDPLATFORM busybox AS tools',
      'ARG TARGETARCH',
      'ARG TARGETPLATFORM',
      'ARG BUILDPLATFORM',
      'RUN echo "built on $BUILDPLATFORM for $TARGETPLATFORM ($TARGETARCH)" > /made',
      'FROM scratch',
      'COPY --from=tools /made /made',
      '',
    ].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df }, ['--platform', `linux/${OTHER_ARCH}`]);
    expect(img.config.architecture).toBe(OTHER_ARCH);
    expect(img.config.os).toBe('linux');
    expect(img.text('made')).toBe(`built on linux/${HOST_ARCH} for linux/${OTHER_ARCH} (${OTHER_ARCH})\n`);
  });

  it('the same with a step before the COPY --from in the target-platform stage', async () => {
    const df = [
      'FROM --platform=$BUILDPLATFORM busybox AS tools',
      'ARG TARGETARCH',
      'RUN echo "for $TARGETARCH" > /made',
      'FROM scratch',
      'WORKDIR /out',
      'COPY --from=tools /made ./',
      '',
    ].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df }, ['--platform', `linux/${OTHER_ARCH}`]);
    expect(img.config.architecture).toBe(OTHER_ARCH);
    expect(img.text('out/made')).toBe(`for ${OTHER_ARCH}\n`);
  });
});

describe('proxy args', () => {
  it('HTTP_PROXY from --build-arg reaches RUN without an ARG, and stays out of history and config', async () => {
    const df = ['FROM busybox', 'RUN echo "proxy=$HTTP_PROXY no=$no_proxy" > /proxy', ''].join('\n');
    const img = await buildFiles(ws, { Dockerfile: df }, ['--build-arg', 'HTTP_PROXY=http://proxy.invalid:3128', '--build-arg', 'no_proxy=localhost']);
    expect(img.text('proxy')).toBe('proxy=http://proxy.invalid:3128 no=localhost\n');
    expect(img.configBytes.toString()).not.toContain('proxy.invalid');
    expect(img.run.stderr).not.toMatch(/not consumed/);
  });

  it('a different proxy does not invalidate the cache of the RUN', async () => {
    const df = ['FROM busybox', 'RUN echo cached-despite-proxy > /p', ''].join('\n');
    const ctx = await ws.context({ Dockerfile: df });
    const first = await ws.build(['--build-arg', 'HTTPS_PROXY=http://one.invalid', ctx]);
    const second = await ws.build(['--build-arg', 'HTTPS_PROXY=http://two.invalid', ctx]);
    expect(first.code).toBe(0);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/^#1 CACHED$/m);
    expect(second.stdout).toBe(first.stdout);
  });
});
