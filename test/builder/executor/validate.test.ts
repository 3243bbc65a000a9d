import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSpec } from '../../../builder/executor/index.js';
import { validateSpec } from '../../../builder/executor/validate.js';
import { isKilnError } from '../../../oci/errors.js';

describe('validateSpec', () => {
  let base: string;
  let spec: RunSpec;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'kiln-validate-'));
    await mkdir(join(base, 'rootfs'));
    await mkdir(join(base, 'upper'));
    await mkdir(join(base, 'full'));
    await writeFile(join(base, 'full/x'), '');
    spec = {
      rootfs: join(base, 'rootfs'), upper: join(base, 'upper'), argv: ['true'], env: ['PATH=/bin'], cwd: '/',
      user: { uid: 0, gid: 0 }, network: 'default', mounts: [],
    };
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  it('accepts a well-formed spec', async () => {
    await expect(validateSpec(spec, false)).resolves.toBeUndefined();
  });

  const bad: [string, (s: RunSpec) => RunSpec, RegExp][] = [
    ['an empty argv', (s) => ({ ...s, argv: [] }), /empty command/],
    ['an env entry without =', (s) => ({ ...s, env: ['PATH'] }), /"PATH" is not NAME=VALUE/],
    ['an env entry with an empty name', (s) => ({ ...s, env: ['=x'] }), /not NAME=VALUE/],
    ['a relative cwd', (s) => ({ ...s, cwd: 'src' }), /WORKDIR "src" is not an absolute path/],
    ['a negative uid', (s) => ({ ...s, user: { uid: -1, gid: 0 } }), /out of range/],
    ['a bad hostname', (s) => ({ ...s, hostname: 'a b' }), /not a valid host name/],
    ['a non-empty upper', (s) => ({ ...s, upper: join(base, 'full') }), /is not empty/],
    ['an upper inside the rootfs', (s) => ({ ...s, upper: s.rootfs }), /overlap/],
    ['a rootfs path overlay cannot carry', (s) => ({ ...s, rootfs: join(base, 'a,b') }), /overlayfs options cannot carry/],
  ];
  for (const [what, change, message] of bad) {
    it(`refuses ${what}`, async () => {
      const err: unknown = await validateSpec(change(spec), false).catch((e: unknown) => e);
      expect(isKilnError(err, 'VALIDATION'), String(err)).toBe(true);
      expect(String(err)).toMatch(message);
    });
  }

  it('says a missing rootfs is NOT_FOUND and a non-root USER needs root when rootless', async () => {
    const missing: unknown = await validateSpec({ ...spec, rootfs: join(base, 'nope') }, false).catch((e: unknown) => e);
    expect(isKilnError(missing, 'NOT_FOUND')).toBe(true);
    const rootless: unknown = await validateSpec({ ...spec, user: { uid: 1000, gid: 1000 } }, true).catch((e: unknown) => e);
    expect(isKilnError(rootless, 'USAGE')).toBe(true);
    expect((rootless as { hint?: string }).hint).toContain('docs/rootless.md');
  });
});
