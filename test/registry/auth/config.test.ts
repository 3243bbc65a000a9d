import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGlob } from '../../../registry/auth/glob.js';
import { AccessRules } from '../../../registry/auth/access-rules.js';
import { parseSize } from '../../../registry/auth/settings.js';
import { loadConfig } from '../../../registry/config.js';
import { runKiln } from '../../support/kiln.js';
import { startServe } from '../../support/serve.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-auth-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** The YAML example of README.md's auth section: the documentation must load as written. */
async function readmeExample(): Promise<string> {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('#### Authentication, access rules and policies'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('README.md has no YAML example in its auth section');
  return block;
}

describe('security configuration', () => {
  it('loads the documented example', async () => {
    const { config, warnings } = await loadConfig({ file: await file('example.yml', await readmeExample()) });
    expect(warnings).toEqual([]);
    expect(config.security).toEqual({
      auth: { htpasswd: { realm: 'kiln', path: './htpasswd' }, token: { issuer: 'kiln', service: 'kiln', realm: undefined, expirationSeconds: 300 } },
      groups: { 'release-managers': ['carol'] },
      access: [
        { repository: 'team-a/**', users: ['alice'], groups: [], actions: ['pull', 'push', 'delete'], anonymous: undefined },
        { repository: 'release/**', users: [], groups: ['release-managers'], actions: ['pull', 'push'], anonymous: undefined },
        { repository: 'public/**', users: ['*'], groups: [], actions: ['pull', 'push'], anonymous: ['pull'] },
      ],
      policies: [{ repository: 'release/**', immutableTags: true, quotaBytes: 500_000_000, quota: '500MB' }],
      rateLimit: { requestsPerSecond: 50, burst: 100 },
      insecureNoAuth: false,
    });
  });

  it('takes REGISTRY_AUTH_* variables and durations for the token lifetime', async () => {
    const env = { REGISTRY_AUTH_HTPASSWD_PATH: '/etc/kiln/htpasswd', REGISTRY_AUTH_TOKEN_EXPIRATION: '10m', REGISTRY_RATELIMIT_REQUESTSPERSECOND: '5' };
    const { config } = await loadConfig({ file: await file('env.yml', 'auth:\n  htpasswd: { path: x }\n  token: {}\n'), env, flags: { insecureNoAuth: true } });
    expect(config.security.auth?.htpasswd).toEqual({ realm: 'kiln', path: '/etc/kiln/htpasswd' });
    expect(config.security.auth?.token?.expirationSeconds).toBe(600);
    expect(config.security.rateLimit).toEqual({ requestsPerSecond: 5, burst: 5 });
    expect(config.security.insecureNoAuth).toBe(true);
  });

  it('names the key (and the file) of every mistake', async () => {
    const cases: Array<[string, string]> = [
      ['auth: { token: { issuer: x } }', 'auth.htpasswd: required'],
      ['auth: { htpasswd: { path: "" } }', 'auth.htpasswd.path: must not be empty'],
      ['auth: { htpasswd: { path: p }, token: { expiration: 10 } }', 'auth.token.expiration: must be at least 60 s'],
      ['auth: { htpasswd: { path: p }, token: { realm: "ftp://x/token" } }', 'auth.token.realm: expected an absolute http(s) URL'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "a/**"\n    users: [alice]\n    actions: [pull, pul]', 'access[0].actions[1]: Invalid option'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "a/**"\n    users: [alice]', 'access[0].actions: required when users or groups are given'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "A/**"\n    anonymous: [pull]', 'access[0].repository: expected a repository glob'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "a"\n    anonymous: [pull]\n  - repository: "b"', 'access[1]: names no users, groups or anonymous access'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "a"\n    groups: [ops]\n    actions: [pull]', 'access[0].groups: group "ops" is not defined under groups'],
      ['auth: { htpasswd: { path: p } }\naccess:\n  - repository: "a"\n    user: [alice]\n    actions: [pull]', 'access[0]: Unrecognized key: "user"'],
      ['access:\n  - repository: "a"\n    anonymous: [pull]', 'access: needs an auth section'],
      ['policies:\n  - repository: "r/**"\n    quota: lots', 'policies[0].quota: expected a size such as 500MB'],
      ['policies:\n  - repository: "r/**"\n    imutableTags: true', 'policies[0]: Unrecognized key: "imutableTags"'],
      ['policies:\n  - repository: "r/**"', 'policies[0]: sets neither immutableTags nor quota'],
      ['rateLimit: { requestsPerSecond: 0 }', 'rateLimit.requestsPerSecond: must be greater than 0'],
      ['rateLimit: { requestsPerSecond: 10, burst: 2.5 }', 'rateLimit.burst: must be a whole number'],
      ['groups: { "a b": [x] }', 'groups'],
    ];
    for (const [i, [yaml, message]] of cases.entries()) {
      const path = await file(`bad-${i}.yml`, `${yaml}\n`);
      await expect(loadConfig({ file: path }), yaml).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining(`${path}: ${message}`) });
    }
    await expect(loadConfig({ env: { REGISTRY_RATELIMIT_BURST: 'many', REGISTRY_RATELIMIT_REQUESTSPERSECOND: '1' } })).rejects.toThrow(/environment variable REGISTRY_RATELIMIT_BURST: expected a number/);
  });

  it('parses sizes with decimal and binary units', () => {
    expect(parseSize('500MB')).toBe(500_000_000);
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('1.5 kB')).toBe(1500);
    expect(parseSize('2048')).toBe(2048);
    expect(parseSize(4096)).toBe(4096);
    expect(parseSize('10 parsecs')).toBeUndefined();
  });

  it('matches globs: * within one segment, ** across segments', () => {
    const glob = (p: string, name: string): boolean => compileGlob(p).test(name);
    expect(glob('team-a/**', 'team-a/app')).toBe(true);
    expect(glob('team-a/**', 'team-a/x/y')).toBe(true);
    expect(glob('team-a/**', 'team-a')).toBe(false);
    expect(glob('team-a/**', 'team-ab/app')).toBe(false);
    expect(glob('library/*', 'library/alpine')).toBe(true);
    expect(glob('library/*', 'library/a/b')).toBe(false);
    expect(glob('*/app', 'x/app')).toBe(true);
    expect(glob('a.b/*', 'axb/c')).toBe(false);
    expect(glob('**', 'any/thing')).toBe(true);
  });

  it('decides by the first rule that matches the repository and names the caller', () => {
    const rules = new AccessRules(
      [
        { repository: 'secret/**', users: ['*'], groups: [], actions: [], anonymous: undefined },
        { repository: 'team/**', users: ['alice'], groups: ['ops'], actions: ['pull', 'push'], anonymous: undefined },
        { repository: '**', users: ['*'], groups: [], actions: ['pull'], anonymous: [] },
      ],
      { ops: ['olga'] },
    );
    expect([...rules.permitted('alice', 'team/x')]).toEqual(['pull', 'push']);
    expect([...rules.permitted('olga', 'team/x')]).toEqual(['pull', 'push']);
    expect([...rules.permitted('bob', 'team/x')]).toEqual(['pull']);
    expect([...rules.permitted('alice', 'secret/x')]).toEqual([]);
    expect([...rules.permitted(undefined, 'secret/x')]).toEqual([]);
    expect([...rules.permitted(undefined, 'team/x')]).toEqual([]);
  });
});

describe('kiln serve start-up rules', () => {
  it('documents the flag and the keys in --help', async () => {
    const help = await runKiln(['serve', '--help']);
    for (const text of ['--insecure-no-auth', 'auth.htpasswd.{realm,path}', 'auth.token.', 'access: [{repository', 'groups:', 'policies:', 'rateLimit.']) {
      expect(help.stdout).toContain(text);
    }
  });

  it('refuses an invalid configuration with exit 2, naming the key', async () => {
    const config = await file('cli-bad.yml', 'policies:\n  - repository: "release/**"\n    quota: 5 apples\n');
    const result = await runKiln(['serve', '--config', config, '--data', join(dir, 'never')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${config}: policies[0].quota: expected a size`);
  });

  it('refuses a non-loopback address without auth, unless --insecure-no-auth', async () => {
    const refused = await runKiln(['serve', '--addr', '0.0.0.0:0', '--data', join(dir, 'open')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refusing to listen on 0\.0\.0\.0:0 without authentication/);
    expect(refused.stderr).toContain('--insecure-no-auth');
    const open = await startServe(['--addr', '0.0.0.0:0', '--data', join(dir, 'open'), '--insecure-no-auth']);
    try {
      expect(open.stderr()).toContain('--insecure-no-auth');
      const port = new URL(open.url).port;
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(200);
    } finally {
      await open.stop();
    }
  });

  it('serves a non-loopback address with auth configured', async () => {
    const htpasswd = await file('users', '');
    const config = await file('open-auth.yml', `auth:\n  htpasswd: { path: ${JSON.stringify(htpasswd)} }\n`);
    const server = await startServe(['--addr', '0.0.0.0:0', '--data', join(dir, 'open-auth'), '--config', config]);
    try {
      const port = new URL(server.url).port;
      expect((await fetch(`http://127.0.0.1:${port}/v2/`)).status).toBe(401);
    } finally {
      await server.stop();
    }
  });
});
