import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, runKiln } from '../support/kiln.js';

// The shipped entry point (bin/kiln.js) runs the esbuild bundle that `npm run build` / `npm test` make
// (scripts/bundle.mjs), and falls back to tsc's dist/cli/ when the bundle is missing or older than it.
const ROOT = resolve(import.meta.dirname, '../..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const CLI_STUB = 'dist/cli/main.js ran\n';

describe('the built CLI', () => {
  it('has a bundle that is current, so bin/kiln.js runs it', () => {
    const bundle = statSync(join(ROOT, 'dist/bundle/main.js'), { throwIfNoEntry: false });
    const cli = statSync(join(ROOT, 'dist/cli/main.js'));
    expect(bundle, 'dist/bundle/main.js is missing: run `npm run build`').toBeDefined();
    expect(bundle!.mtimeMs, 'dist/bundle/ is older than dist/cli/: run `npm run build`').toBeGreaterThanOrEqual(cli.mtimeMs);
  });

  it('prints the version through bin/kiln.js', async () => {
    const r = await runKiln(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });
});

// A copy of bin/kiln.js and the real bundle in a temp dir (the real dist/ is never touched), with a stub in place of
// dist/cli/main.js that says it ran: the output tells which one bin/kiln.js chose. The copy has no node_modules,
// so the bundle's start-up also proves it needs no dependency outside dist/bundle/.
describe('bin/kiln.js picks its entry', () => {
  let dir: string;
  const bundleMain = (): string => join(dir, 'dist/bundle/main.js');
  const cliMain = (): string => join(dir, 'dist/cli/main.js');
  const kiln = (): ReturnType<typeof run> => run(process.execPath, [join(dir, 'bin/kiln.js'), '--version']);
  /** Sets the copy's bundle and dist/cli mtimes, in seconds relative to now. */
  const ages = (bundle: number, cli: number): void => {
    const now = Date.now() / 1000;
    utimesSync(bundleMain(), now + bundle, now + bundle);
    utimesSync(cliMain(), now + cli, now + cli);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-bundle-'));
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    mkdirSync(join(dir, 'bin'));
    cpSync(join(ROOT, 'bin/kiln.js'), join(dir, 'bin/kiln.js'));
    cpSync(join(ROOT, 'dist/bundle'), join(dir, 'dist/bundle'), { recursive: true, filter: (src) => !src.endsWith('.map') });
    mkdirSync(join(dir, 'dist/cli'));
    writeFileSync(cliMain(), `process.stdout.write(${JSON.stringify(CLI_STUB)});\n`);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the bundle when it is newer than dist/cli/main.js', async () => {
    ages(-10, -20);
    const r = await kiln();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(VERSION);
  });

  it('runs the bundle when both have the same mtime', async () => {
    ages(-10, -10);
    expect((await kiln()).stdout.trim()).toBe(VERSION);
  });

  it('runs dist/cli/main.js when the bundle is older (tsc ran after the bundle)', async () => {
    ages(-20, -10);
    const r = await kiln();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(CLI_STUB);
  });

  it('runs dist/cli/main.js without a bundle, the bundle without dist/cli, and says when neither is built', async () => {
    rmSync(join(dir, 'dist/cli'), { recursive: true });
    expect((await kiln()).stdout.trim()).toBe(VERSION);

    rmSync(join(dir, 'dist/bundle'), { recursive: true });
    const none = await kiln();
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('not built yet');

    mkdirSync(join(dir, 'dist/cli'));
    writeFileSync(cliMain(), `process.stdout.write(${JSON.stringify(CLI_STUB)});\n`);
    expect((await kiln()).stdout).toBe(CLI_STUB);
  });
});
