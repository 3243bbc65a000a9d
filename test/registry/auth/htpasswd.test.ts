import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HtpasswdFile, parseHtpasswd } from '../../../registry/auth/htpasswd.js';
import { silentLogger } from '../../../registry/logger.js';
import { run, runKiln } from '../../support/kiln.js';
import { requirePeer } from '../../support/peers.js';
import { basic, bearer, fetchToken, htpasswdText, type SecureRegistry, startSecureRegistry } from './helpers.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-htpasswd-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** `htpasswd -nbB user password`: the line Apache's tool writes. */
async function apacheLine(user: string, password: string, flag = '-B'): Promise<string> {
  const out = await run(requirePeer('htpasswd', 'apache2-utils'), ['-nb', flag, user, password]);
  expect(out.code, out.stderr).toBe(0);
  return out.stdout.trim();
}

/** Replaces the file the way editors and `htpasswd` do: a new file renamed over the old. */
async function replaceFile(path: string, text: string): Promise<void> {
  await writeFile(`${path}.new`, text);
  await rename(`${path}.new`, path);
}

describe('parseHtpasswd', () => {
  it('reads htpasswd -B lines ($2y$), other bcrypt prefixes, comments and blank lines', async () => {
    const text = `# team a\n${await apacheLine('alice', 'pw')}\n\n${htpasswdText({ bob: 'x' })}   \r\n`;
    const users = parseHtpasswd(text, 'file');
    expect([...users.keys()]).toEqual(['alice', 'bob']);
    expect(users.get('alice')).toMatch(/^\$2y\$/);
    expect(users.get('bob')).toMatch(/^\$2b\$/);
  });

  it('refuses other hash types naming file and line, never the hash', async () => {
    const md5 = await apacheLine('carol', 'pw', '-m');
    const sha = await apacheLine('dave', 'pw', '-s');
    const cases: Array<[string, RegExp]> = [
      [`${await apacheLine('alice', 'pw')}\n# x\n${md5}\n`, /^f:3: the password of "carol" is an Apache MD5 hash \(\$apr1\$\), not bcrypt$/],
      [`${sha}\n`, /^f:1: .*"dave" is a SHA-1 hash/],
      ['erin:plaintext\n', /^f:1: .*plain-text/],
      ['frank:$2y$05$short\n', /^f:1: .*malformed bcrypt/],
      ['no colon here\n', /^f:1: expected user:hash$/],
      [`${htpasswdText({ gina: 'a' })}${htpasswdText({ gina: 'b' })}`, /^f:2: user "gina" appears twice$/],
    ];
    for (const [text, message] of cases) {
      let error: unknown;
      try {
        parseHtpasswd(text, 'f');
      } catch (err) {
        error = err;
      }
      expect(error, text).toMatchObject({ code: 'USAGE', message: expect.stringMatching(message) });
      expect((error as Error).message).not.toContain(md5.split(':')[1]);
    }
  });
});

describe('HtpasswdFile', () => {
  it('verifies passwords, and notices a replaced file once it looks again', async () => {
    const path = join(dir, 'reload');
    await writeFile(path, await apacheLine('alice', 'one'));
    const file = await HtpasswdFile.load(path, silentLogger);
    expect(await file.verify('alice', 'one')).toBe(true);
    expect(await file.verify('alice', 'two')).toBe(false);
    expect(await file.verify('nobody', 'one')).toBe(false);
    await replaceFile(path, await apacheLine('alice', 'two'));
    await file.refresh(Date.now() + 5000);
    expect(await file.verify('alice', 'two')).toBe(true);
    expect(await file.verify('alice', 'one')).toBe(false);
  });

  it('keeps the last good users when the file turns invalid or disappears', async () => {
    const path = join(dir, 'broken');
    await writeFile(path, htpasswdText({ alice: 'pw' }));
    const errors: object[] = [];
    const file = await HtpasswdFile.load(path, { ...silentLogger, error: (obj) => errors.push(obj) });
    await replaceFile(path, 'alice:{SHA}abc\n');
    await file.refresh(Date.now() + 5000);
    expect(await file.verify('alice', 'pw')).toBe(true);
    await rm(path);
    await file.refresh(Date.now() + 10_000);
    expect(await file.verify('alice', 'pw')).toBe(true);
    expect(errors).toHaveLength(2);
  });

  it('is a start-up error when missing', async () => {
    await expect(HtpasswdFile.load(join(dir, 'missing'), silentLogger)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('auth.htpasswd.path') });
  });
});

describe('htpasswd changes on a running registry', () => {
  let registry: SecureRegistry;
  beforeAll(async () => {
    registry = await startSecureRegistry({
      users: { alice: 'alice-pw' },
      yaml: 'auth:\n  htpasswd: { path: HTPASSWD }\n  token: {}\naccess:\n  - repository: "**"\n    users: ["*"]\n    actions: [pull]\n',
    });
  });
  afterAll(() => registry?.close());

  /** Polls `/v2/` with `headers` until it answers `status` (the file is looked at once a second at most). */
  async function eventually(headers: Record<string, string>, status: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await fetch(`${registry.url}/v2/`, { headers });
      if (res.status === status) return;
      if (Date.now() > deadline) throw new Error(`still ${res.status}, not ${status}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('admits added users and refuses removed ones (and their tokens) without a restart', async () => {
    await eventually(basic('alice', 'alice-pw'), 200);
    const token = await fetchToken(registry.url, 'kiln', ['repository:x/y:pull'], basic('alice', 'alice-pw'));
    await eventually(bearer(token), 200);
    await eventually(basic('carol', 'carol-pw'), 401);
    await replaceFile(registry.htpasswd, `${htpasswdText({ carol: 'carol-pw' })}${await apacheLine('dave', 'dave-pw')}\n`);
    await eventually(basic('carol', 'carol-pw'), 200);
    await eventually(basic('dave', 'dave-pw'), 200);
    await eventually(basic('alice', 'alice-pw'), 401);
    await eventually(bearer(token), 401);
  });
});

describe('kiln serve with a broken htpasswd file', () => {
  it('does not start: exit 2 naming the file and line', async () => {
    const htpasswd = join(dir, 'served');
    await writeFile(htpasswd, `${await apacheLine('alice', 'pw')}\n\n${await apacheLine('carol', 'pw', '-m')}\n`);
    const config = join(dir, 'broken.yml');
    await writeFile(config, `http: { addr: "127.0.0.1:0" }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} } }\nauth:\n  htpasswd: { realm: kiln, path: ${JSON.stringify(htpasswd)} }\n`);
    const result = await runKiln(['serve', '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${htpasswd}:3: the password of "carol" is an Apache MD5 hash`);
    expect(result.stderr).toContain(`htpasswd -B ${htpasswd} carol`);
  });
});
