import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveUser } from '../../../builder/executor/index.js';
import { isKilnError } from '../../../oci/errors.js';

// The cases of moby/sys user.GetExecUser's tests, rewritten: numbers are ids (never names), an explicit group
// drops the supplementary groups, and out-of-range ids fail rather than falling back to a name lookup.
const PASSWD = `
root:x:0:0:root user:/root:/bin/sh
adm:x:42:43:adm:/var/adm:/bin/false
111:x:222:333::/var/garbage
odd:x:111:112::/home/odd:::::
user7456:x:7456:100:Someone:/home/user7456
-42:x:12:13:broken:/very/broken
not a passwd line at all
`;
const GROUP = `
# comment lines are skipped
root:x:0:root
adm:x:43:
grp:x:1234:root,adm,user7456
444:x:555:111
odd:x:444:
not a group line
`;

describe('resolveUser', () => {
  let base: string;
  let rootfs: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'kiln-user-'));
    rootfs = join(base, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    // Through an absolute symlink: it must resolve inside the rootfs, not on the host.
    await mkdir(join(rootfs, 'shared'));
    await writeFile(join(rootfs, 'shared/passwd'), PASSWD);
    await symlink('/shared/passwd', join(rootfs, 'etc/passwd'));
    await writeFile(join(rootfs, 'etc/group'), GROUP);
  });
  afterAll(() => rm(base, { recursive: true, force: true }));

  const cases: [string, number, number, number[]][] = [
    ['root', 0, 0, [0, 1234]],
    ['', 0, 0, [0, 1234]],
    ['adm', 42, 43, [1234]],
    ['root:adm', 0, 43, []],
    ['adm:1234', 42, 1234, []],
    ['42:1234', 42, 1234, []],
    ['1337:1234', 1337, 1234, []],
    ['1337', 1337, 0, []],
    ['111', 111, 112, []],
    ['111:444', 111, 444, []],
    ['7456', 7456, 100, [1234]],
    ['7456:2147483647', 7456, 2147483647, []],
    ['2147483647', 2147483647, 0, []],
  ];
  for (const [spec, uid, gid, groups] of cases) {
    it(`resolves ${JSON.stringify(spec)} to ${uid}:${gid} +[${groups.join(',')}]`, async () => {
      expect(await resolveUser(rootfs, spec)).toEqual({ uid, gid, groups });
    });
  }

  const invalid = [
    'notuser', 'notuser:notgroup', 'root:notgroup', 'notuser:adm', '8888:notgroup', 'notuser:8888',
    '-1:0', '0:-3', '-5:-2', '-42', '42:2147483648', '2147483648:43', '2147483648', '9223372036854775808',
    '0:9223372036854775808',
  ];
  for (const spec of invalid) {
    it(`refuses ${JSON.stringify(spec)} with a VALIDATION error naming it`, async () => {
      const err: unknown = await resolveUser(rootfs, spec).catch((e: unknown) => e);
      expect(isKilnError(err, 'VALIDATION')).toBe(true);
      expect(String(err)).toContain(`USER ${spec}`);
    });
  }

  it('works with ids only when the rootfs has no /etc/passwd or /etc/group', async () => {
    const bare = join(base, 'bare');
    await mkdir(bare);
    expect(await resolveUser(bare, '1000:1000')).toEqual({ uid: 1000, gid: 1000, groups: [] });
    const err: unknown = await resolveUser(bare, 'app').catch((e: unknown) => e);
    expect(isKilnError(err, 'VALIDATION')).toBe(true);
    expect(String(err)).toContain('has no /etc/passwd');
    expect((err as { hint?: string }).hint).toMatch(/useradd|numeric/);
  });
});
