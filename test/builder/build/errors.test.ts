import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';
import type { KilnRun } from '../../support/kiln.js';
import { expectNothingLeft, HOST_ARCH, OTHER_ARCH, storedImages } from './helpers.js';

let ws: BuildWorkspace;
let stored: { name: string; digest: string }[];

beforeAll(async () => {
  ws = await buildWorkspace();
  // A tagged image in the store, so "nothing tagged" is checked against a non-empty list.
  const ctx = await ws.context({ Dockerfile: 'FROM busybox\nRUN echo ok > /ok\n' });
  const r = await ws.build(['-t', 'kept:1', ctx]);
  expect(r.code, r.stderr).toBe(0);
  stored = await storedImages(ws);
  expect(stored.map((s) => s.name)).toContain('docker.io/library/kept:1');
});
afterAll(async () => ws.cleanup());

/** Builds a Dockerfile that must fail: exit 1, one `kiln: error:` line, nothing tagged, mounted or left in tmp. */
async function failing(dockerfile: string, args: string[] = [], files: Record<string, string> = {}): Promise<{ run: KilnRun; error: string }> {
  const ctx = await ws.context({ ...files, Dockerfile: dockerfile });
  const run = await ws.build(['-t', 'must-not-exist:1', ...args, ctx]);
  expect(run.code, run.stderr).toBe(1);
  const errors = run.stderr.split('\n').filter((l) => l.startsWith('kiln: error: '));
  expect(errors).toHaveLength(1);
  await expectNothingLeft(ws, stored);
  return { run, error: errors[0]!.slice('kiln: error: '.length) };
}

describe('syntax errors', () => {
  it('an unknown instruction: file:line:column and a suggestion', async () => {
    const { error } = await failing('FROM busybox\nRUN echo fine\nFRM x\n');
    expect(error).toMatch(/^Dockerfile:3:1: /);
    expect(error).toContain('FRM');
  });

  it('a COPY without a destination: what was expected', async () => {
    const { error } = await failing('FROM busybox\n\nCOPY onlyone\n');
    expect(error).toMatch(/^Dockerfile:3:1: /);
    expect(error).toMatch(/COPY requires at least two arguments/);
  });

  it('an invalid --mount flag points at the flag', async () => {
    const { error } = await failing('FROM busybox\nRUN --mount=type=bogus true\n');
    expect(error).toMatch(/^Dockerfile:2:\d+: /);
    expect(error).toContain('bogus');
  });

  it('an invalid HEALTHCHECK duration', async () => {
    const { error } = await failing('FROM busybox\nHEALTHCHECK --interval=soon CMD true\n');
    expect(error).toMatch(/^Dockerfile:2:\d+: /);
    expect(error).toContain('soon');
  });

  it('a -f file keeps its own name in the positions', async () => {
    const ctx = await ws.context({ 'x.txt': 'x\n' });
    const file = join(ws.dir, 'Custom.Dockerfile');
    await writeFile(file, 'FROM busybox\nBOGUS here\n');
    const r = await ws.build(['-f', file, ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Custom\.Dockerfile:2:1: /);
    await expectNothingLeft(ws, stored);
  });
});

describe('build errors', () => {
  it('COPY --from an unknown stage names it', async () => {
    const { error } = await failing('FROM busybox AS one\nFROM busybox\nCOPY --from=nosuchstage /x /\n');
    expect(error).toMatch(/^Dockerfile:3: /);
    expect(error).toContain('--from=nosuchstage');
  });

  it('COPY of a missing file names it', async () => {
    const { error } = await failing('FROM busybox\nCOPY missing.txt /\n');
    expect(error).toBe('Dockerfile:2: COPY failed: "missing.txt" not found in build context');
  });

  it('COPY from outside the context is refused', async () => {
    const { error } = await failing('FROM busybox\nCOPY ../outside.txt /\n');
    expect(error).toMatch(/^Dockerfile:2: COPY failed: forbidden path outside the build context: "\.\.\/outside\.txt"/);
  });

  it('several sources into a destination without a trailing slash', async () => {
    const { error } = await failing('FROM busybox\nCOPY a.txt b.txt /dest\n', [], { 'a.txt': 'a', 'b.txt': 'b' });
    expect(error).toMatch(/^Dockerfile:2: /);
    expect(error).toContain('must be a directory and end with a "/"');
  });

  it('a failing RUN reports its exit code and its last lines of output', async () => {
    const { error } = await failing('FROM busybox\nRUN echo first-line; echo last-line >&2; exit 3\n');
    expect(error).toMatch(/^Dockerfile:2: RUN echo first-line.* exited with code 3/);
    expect(error).toContain('first-line');
    expect(error).toContain('last-line');
  });

  it('a RUN of a command the rootfs lacks', async () => {
    const { error } = await failing('FROM busybox\nRUN ["/no/such/binary"]\n');
    expect(error).toMatch(/exited with code 127/);
    expect(error).toContain('/no/such/binary');
  });

  it('an unknown --target lists the stages there are', async () => {
    const { error } = await failing('FROM busybox AS build\nFROM busybox AS release\n', ['--target', 'nosuch']);
    expect(error).toContain('--target nosuch');
    expect(error).toContain('build, release');
  });

  it('--platform of another architecture with a RUN: no emulation, a clear error', async () => {
    const { error } = await failing('FROM scratch\nRUN true\n', ['--platform', `linux/${OTHER_ARCH}`]);
    expect(error.startsWith(`Dockerfile:2:1: cannot RUN for linux/${OTHER_ARCH} on this linux/${HOST_ARCH} host`)).toBe(true);
  });

  it('--platform of another architecture with a base that has only this host\'s', async () => {
    const { error } = await failing('FROM busybox\nRUN true\n', ['--platform', `linux/${OTHER_ARCH}`]);
    expect(error).toContain(`linux/${HOST_ARCH}, not the requested linux/${OTHER_ARCH}`);
  });

  it('a failing stage stops the build even when the target does not fail itself', async () => {
    const { error } = await failing('FROM busybox AS broken\nRUN exit 7\nFROM busybox\nCOPY --from=broken /etc/passwd /p\n');
    expect(error).toMatch(/^Dockerfile:2: RUN exit 7 exited with code 7/);
  });

  it('a USER that the rootfs does not know', async () => {
    const { error } = await failing('FROM busybox\nUSER ghost\nRUN true\n');
    expect(error).toMatch(/^Dockerfile:3: /);
    expect(error).toContain('ghost');
  });
});
