import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../support/build-fixture.js';

let ws: BuildWorkspace;
let wasteful: string;

beforeAll(async () => {
  ws = await buildWorkspace();
  // A 1 MiB file copied in and deleted again: dive counts it as wasted, so efficiency falls well under 0.9.
  wasteful = await ws.context({ Dockerfile: 'FROM busybox\nCOPY big.bin /big.bin\nRUN rm /big.bin\n' });
  await writeFile(join(wasteful, 'big.bin'), randomBytes(1 << 20));
});
afterAll(async () => ws.cleanup());

describe('kiln build --analyze', () => {
  it('prints the analysis on stderr and keeps stdout for the digest', async () => {
    const r = await ws.build(['--analyze', wasteful], { env: { CI: 'false' } });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(r.stderr).toMatch(/dive:\s+efficiency/);
    expect(r.stderr).toContain('big.bin');
  });

  it('in CI mode a failing .dive-ci rule exits 1 before the image is tagged or pushed', async () => {
    const r = await ws.build(['--analyze', '-t', 'gated/app:1', wasteful], { env: { CI: 'true' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FAIL: lowestEfficiency/);
    expect(r.stderr).toMatch(/CI rules failed/);
    const images = await ws.kiln(['images', '--format', 'json']);
    expect((JSON.parse(images.stdout) as { name: string }[]).map((i) => i.name)).not.toContain('docker.io/gated/app:1');
  });

  it('in CI mode an efficient image passes the gate', async () => {
    const lean = await ws.context({ Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const r = await ws.build(['--analyze', '-t', 'lean/app:1', lean], { env: { CI: 'true' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/Result:PASS/);
  });
});
