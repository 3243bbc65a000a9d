import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln } from '../support/kiln.js';
import { workDir, writeImage } from './images.js';

// `kiln analyze` as users run it (the built CLI; npm test compiles first).
let work: Awaited<ReturnType<typeof workDir>>;
let wasteful: string;
let single: string;

beforeAll(async () => {
  work = await workDir();
  // /app/f 1000 then 300: efficiency 300/1300, wasted 1300, user% 1300/300 (see efficiency.test.ts).
  wasteful = (
    await writeImage(work.dir, 'wasteful', [
      { entries: [{ name: 'app/', type: 'directory' }, { name: 'app/f', size: 1000 }], createdBy: '/bin/sh -c #(nop) ADD file:1 in /' },
      { entries: [{ name: 'app/f', size: 300 }], createdBy: 'RUN /bin/sh -c echo >> /app/f # buildkit' },
    ])
  ).spec;
  single = (await writeImage(work.dir, 'single', [{ entries: [{ name: 'a', size: 10 }] }])).spec;
});
afterAll(async () => {
  await work.dispose();
});

describe('kiln analyze --ci', () => {
  it('prints dive\'s CI report and exits 1 when a rule fails', async () => {
    const res = await runKiln(['analyze', wasteful]);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('  efficiency: 23.0769 %\n  wastedBytes: 1300 bytes (1.3 kB)\n  userWastedPercent: 433.3333 %\n');
    expect(res.stdout).toContain('    2        1.3 kB  /app/f\n');
    expect(res.stdout).toContain('Result:FAIL [Total:3] [Passed:0] [Failed:2] [Warn:0] [Skipped:1]');
    expect(res.stderr).toContain('Using default CI config');
    expect(res.stderr).toContain('kiln: error: CI rules failed for');
  });

  it('flags override the defaults; equal-to-threshold passes', async () => {
    const res = await runKiln(['analyze', wasteful, '--lowestEfficiency', String(300 / 1300), '--highestUserWastedPercent', 'disabled', '--highestWastedBytes', '1300']);
    expect(res.stdout).toContain('Result:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]');
    expect(res.code).toBe(0);
  });

  it('a single-layer image passes with NaN user%', async () => {
    const res = await runKiln(['analyze', single]);
    expect(res.stdout).toContain('userWastedPercent: NaN %');
    expect(res.code).toBe(0);
  });

  it('reads --ci-config, and flags win over it', async () => {
    const config = join(work.dir, 'dive-ci.yaml');
    await writeFile(config, 'rules:\n  lowestEfficiency: 0.2\n  highestWastedBytes: 1KB\n  highestUserWastedPercent: disabled\n');
    const fromFile = await runKiln(['analyze', wasteful, '--ci-config', config]);
    expect(fromFile.stdout).toContain('FAIL: highestWastedBytes: too many bytes wasted (wasted-bytes=1300 > threshold=1000)');
    expect(fromFile.stdout).toContain('PASS: lowestEfficiency');
    expect(fromFile.stderr).toContain(`Using CI config: ${config}`);
    expect(fromFile.code).toBe(1);
    const overridden = await runKiln(['analyze', wasteful, '--ci-config', config, '--highestWastedBytes', '2kB']);
    expect(overridden.code).toBe(0);
  });

  it('reads .dive-ci from the current directory', async () => {
    const cwd = join(work.dir, 'project');
    await mkdir(cwd, { recursive: true });
    await writeFile(join(cwd, '.dive-ci'), 'rules:\n  lowestEfficiency: disabled\n  highestUserWastedPercent: disabled\n');
    const bin = fileURLToPath(new URL('../../bin/kiln.js', import.meta.url));
    const res = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [bin, 'analyze', wasteful], { cwd, env: { ...process.env, CI: 'true', NO_COLOR: '1' } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
      );
    });
    expect(res.stderr).toContain('Using CI config: .dive-ci');
    expect(res.stdout).toContain('Result:PASS [Total:3] [Passed:0] [Failed:0] [Warn:0] [Skipped:3]');
    expect(res.code).toBe(0);
  });

  it('a misconfigured rule: dive\'s lines and exit 1', async () => {
    const res = await runKiln(['analyze', wasteful, '--lowestEfficiency', '1.5']);
    expect(res.stdout).toContain("  MISCONFIGURED: lowestEfficiency: lowestEfficiency config value is outside allowed range (0-1), given '1.5'\nCI Misconfigured\n");
    expect(res.code).toBe(1);
  });

  it('a malformed or missing CI config file is an error', async () => {
    const bad = join(work.dir, 'bad.yaml');
    await writeFile(bad, 'rules: [unclosed\n');
    const res = await runKiln(['analyze', wasteful, '--ci-config', bad]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`CI config ${bad} is not valid YAML`);
    const list = join(work.dir, 'list.yaml');
    await writeFile(list, '- rules\n');
    expect((await runKiln(['analyze', wasteful, '--ci-config', list])).stderr).toContain('must be a YAML mapping');
    const missing = await runKiln(['analyze', wasteful, '--ci-config', join(work.dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read CI config');
  });

  it('--gate corrected judges the overlay numbers', async () => {
    const res = await runKiln(['analyze', wasteful, '--gate', 'corrected', '--lowestEfficiency', '0.2', '--highestUserWastedPercent', '3.5']);
    // Corrected: wasted 1000 (the shadowed copy), user% 1000/300; the 3.5 threshold is out of range → misconfigured.
    expect(res.stdout).toContain('  wastedBytes: 1000 bytes (1.0 kB)');
    expect(res.stdout).toContain('CI Misconfigured');
  });
});

describe('kiln analyze (people and machines)', () => {
  it('prints the readable report when not in CI', async () => {
    const res = await runKiln(['analyze', wasteful], { env: { CI: 'false' } });
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('dive:       efficiency 23.0769 %, wasted 1.3 kB, user wasted 433.3333 %');
    expect(res.stdout).toContain('corrected:  efficiency 23.0769 %, wasted 1.0 kB');
    expect(res.stdout).toContain('echo >> /app/f');
    expect(res.stdout).toContain('are overwritten by layer 2');
  });

  it('--format json gives the full result; NaN becomes null', async () => {
    const res = await runKiln(['analyze', single, '--format', 'json'], { env: { CI: '' } });
    const doc = JSON.parse(res.stdout) as { dive: { efficiency: number; userWastedPercent: number | null }; layers: unknown[] };
    expect(doc.dive.efficiency).toBe(1);
    expect(doc.dive.userWastedPercent).toBeNull();
    expect(doc.layers).toHaveLength(1);
  });

  it("--json writes dive's export shape, --html a page", async () => {
    const json = join(work.dir, 'export.json');
    const html = join(work.dir, 'report.html');
    const res = await runKiln(['analyze', wasteful, '--json', json, '--html', html], { env: { CI: '0' } });
    expect(res.code).toBe(0);
    const doc = JSON.parse(await readFile(json, 'utf8')) as Record<string, Record<string, unknown> | Array<Record<string, unknown>>>;
    expect(Object.keys(doc)).toEqual(['layer', 'image', 'kiln']);
    const layer = (doc.layer as Array<Record<string, unknown>>)[1] as Record<string, unknown>;
    expect(Object.keys(layer)).toEqual(['index', 'id', 'digestId', 'sizeBytes', 'command', 'fileList']);
    expect(layer).toMatchObject({ index: 1, sizeBytes: 300, command: 'RUN /bin/sh -c echo >> /app/f # buildkit' });
    expect(doc.image).toEqual({ sizeBytes: 1300, inefficientBytes: 1300, efficiencyScore: 300 / 1300, fileReference: [{ count: 2, sizeBytes: 1300, file: '/app/f' }] });
    // Go's encoder escapes '>' inside strings.
    expect(await readFile(json, 'utf8')).toContain('echo \\u003e\\u003e /app/f');
    const page = await readFile(html, 'utf8');
    expect(page).toContain('<svg');
    expect(page).toContain('wasted by a later layer');
  });

  it('--help documents the flags', async () => {
    const res = await runKiln(['analyze', '--help']);
    for (const flag of ['--ci', '--ci-config', '--lowestEfficiency', '--highestWastedBytes', '--highestUserWastedPercent', '--gate', '--json', '--html', '--platform', '--format']) {
      expect(res.stdout).toContain(flag);
    }
  });
});
