import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closestMatch } from '../../../builder/dockerfile/errors.js';
import { parseDockerfile, parseInstructions } from '../../../builder/dockerfile/parser.js';
import { findStage, isValidStageName } from '../../../builder/dockerfile/stages.js';
import { thrown } from '../../support/errors.js';

const lines = (...l: string[]): string => l.join('\n');

describe('parseDockerfile', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-dockerfile-test-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('splits a multi-stage Dockerfile read from disk into global ARGs and stages', async () => {
    const file = join(dir, 'Dockerfile');
    await writeFile(
      file,
      lines(
        '# syntax=docker/dockerfile:1',
        '# check=skip=JSONArgsRecommended',
        'ARG GO=1.22',
        'ARG BASE',
        'FROM golang:${GO} AS Build',
        'WORKDIR /src',
        'COPY . .',
        'RUN --mount=type=cache,target=/root/.cache/go-build go build -o /out/app ./cmd/app',
        '',
        'FROM ${BASE:-alpine} AS runtime',
        'COPY --from=build /out/app /usr/local/bin/app',
        'MAINTAINER someone',
        'ENTRYPOINT ["app"]',
        'FROM runtime',
        '',
      ),
    );
    const df = parseDockerfile(await readFile(file, 'utf8'), { file: 'Dockerfile' });
    expect(df.file).toBe('Dockerfile');
    expect(df.directives).toEqual({ syntax: 'docker/dockerfile:1', escape: '\\', check: 'skip=JSONArgsRecommended' });
    expect(df.globalArgs.map((a) => a.args)).toEqual([[{ key: 'GO', value: '1.22' }], [{ key: 'BASE' }]]);
    expect(df.stages.map((s) => [s.index, s.name, s.from.image, s.instructions.map((i) => i.kind)])).toEqual([
      [0, 'build', 'golang:${GO}', ['WORKDIR', 'COPY', 'RUN']],
      [1, 'runtime', '${BASE:-alpine}', ['COPY', 'MAINTAINER', 'ENTRYPOINT']],
      [2, undefined, 'runtime', []],
    ]);
    expect(df.warnings).toEqual([{ line: 12, message: expect.stringContaining('MAINTAINER is deprecated') }]);
    expect(findStage(df.stages, 'BUILD')?.index).toBe(0);
    expect(findStage(df.stages, '1')?.name).toBe('runtime');
    expect(findStage(df.stages, 'runtime', 1)).toBeUndefined();
    expect(findStage(df.stages, '2', 2)).toBeUndefined();
    expect(findStage(df.stages, '7')).toBeUndefined();
    expect(findStage(df.stages, 'alpine')).toBeUndefined();
  });

  it('refuses duplicate stage names, case-insensitively', () => {
    const err = thrown(() => parseDockerfile(lines('FROM a AS base', 'FROM b AS Base'), { file: 'Dockerfile' }));
    expect(err.code).toBe('DOCKERFILE_INVALID');
    expect(err.message).toBe('Dockerfile:2:1: duplicate stage name "base" (already used at line 1): give each stage its own name');
  });

  it('refuses instructions other than ARG before the first FROM, and a file without FROM', () => {
    expect(thrown(() => parseDockerfile(lines('ARG X', 'RUN true', 'FROM a'), { file: 'df' })).message).toBe(
      'df:2:1: RUN before the first FROM: only ARG may come before FROM (start a stage with FROM <image>)',
    );
    expect(thrown(() => parseDockerfile('ARG X', { file: 'df' })).message).toMatch(/no build stage/);
  });

  it('reports errors with the file name given', () => {
    const err = thrown(() => parseDockerfile('FROM x\nCOPY --chwon=1 a b', { file: 'build/Dockerfile.dev' }));
    expect(err.message).toMatch(/^build\/Dockerfile\.dev:2:6: unknown flag --chwon for COPY: did you mean --chown\?/);
    expect(err.detail).toEqual({ file: 'build/Dockerfile.dev', line: 2, column: 6 });
  });

  it('parses ONBUILD triggers of a base image on their own, with a chosen escape', () => {
    const triggers = ['RUN echo one', 'COPY <<EOF /x\nhi\nEOF'].join('\n');
    expect(parseInstructions(triggers, { file: 'onbuild' }).map((i) => i.kind)).toEqual(['RUN', 'COPY']);
    expect(parseInstructions('RUN a `\n b', { file: 'onbuild', escape: '`' })).toMatchObject([{ command: { form: 'shell', text: 'a  b' } }]);
  });
});

describe('stage names and suggestions', () => {
  it('follows BuildKit\'s stage name rule', () => {
    for (const ok of ['a', 'build', 'build-env', 'b_2', 'v1.2']) expect(isValidStageName(ok)).toBe(true);
    for (const bad of ['', '1a', '-a', 'a b', 'a/b', 'a:b', 'Ab']) expect(isValidStageName(bad)).toBe(false);
  });

  it('suggests close names only', () => {
    expect(closestMatch('chwon', ['chown', 'chmod', 'from'])).toBe('chown');
    expect(closestMatch('RUNN', ['RUN', 'ADD'])).toBe('RUN');
    expect(closestMatch('zzz', ['RUN', 'ADD'])).toBeUndefined();
  });
});
