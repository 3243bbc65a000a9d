import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultDockerConfigPath, removeCredentials, saveCredentials } from '../../../oci/client/auth-file.js';
import { credentialFiles, lookupCredentials } from '../../../oci/client/credentials.js';
import { isKilnError } from '../../../oci/errors.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

// A real credential helper program, speaking the docker-credential-helpers protocol.
const HELPER = `#!/bin/sh
[ "$1" = get ] || exit 2
read -r url
case "$url" in
  helper.example) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$url" ;;
  store.example) printf '{"Username":"store-user","Secret":"store-secret"}' ;;
  token.example) printf '{"Username":"<token>","Secret":"identity-secret"}' ;;
  https://index.docker.io/v1/) printf '{"Username":"hub-user","Secret":"hub-secret"}' ;;
  broken.example) echo "keychain locked" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

let dir: string;
let env: NodeJS.ProcessEnv;

async function writeJson(path: string, doc: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(doc));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-creds-'));
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'docker-credential-test'), HELPER);
  await chmod(join(bin, 'docker-credential-test'), 0o755);
  // Only what the lookup reads: no variable of the real user leaks in.
  env = { HOME: join(dir, 'home'), PATH: `${bin}:${process.env.PATH ?? ''}` };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('credential lookup order', () => {
  it('lists --authfile, REGISTRY_AUTH_FILE, docker config, XDG runtime, XDG config', () => {
    const files = credentialFiles({
      authfile: '/a.json',
      env: { HOME: '/h', REGISTRY_AUTH_FILE: '/r.json', DOCKER_CONFIG: '/d', XDG_RUNTIME_DIR: '/run/u', XDG_CONFIG_HOME: '/c' },
    });
    expect(files.map((f) => f.path)).toEqual(['/a.json', '/r.json', '/d/config.json', '/run/u/containers/auth.json', '/c/containers/auth.json']);
    expect(credentialFiles({ env: { HOME: '/h' } }).map((f) => f.path)).toEqual(['/h/.docker/config.json', '/h/.config/containers/auth.json']);
  });

  it('takes the first file that has the host, in that order', async () => {
    const host = 'reg.example';
    const entry = (user: string): unknown => ({ auths: { [host]: { auth: b64(`${user}:pw-${user}`) } } });
    const paths = {
      authfile: join(dir, 'authfile.json'),
      registryAuthFile: join(dir, 'registry-auth.json'),
      docker: join(dir, 'docker', 'config.json'),
      runtime: join(dir, 'run', 'containers', 'auth.json'),
      config: join(dir, 'xdg', 'containers', 'auth.json'),
    };
    env = { ...env, REGISTRY_AUTH_FILE: paths.registryAuthFile, DOCKER_CONFIG: join(dir, 'docker'), XDG_RUNTIME_DIR: join(dir, 'run'), XDG_CONFIG_HOME: join(dir, 'xdg') };
    const order: [keyof typeof paths, string][] = [['config', 'e'], ['runtime', 'd'], ['docker', 'c'], ['registryAuthFile', 'b'], ['authfile', 'a']];
    for (const [which, user] of order) {
      await writeJson(paths[which], entry(user));
      const cred = await lookupCredentials(host, { authfile: paths.authfile, env }).catch((err: unknown) => err);
      if (which === 'config' || which === 'runtime' || which === 'docker' || which === 'registryAuthFile') {
        // --authfile is named but does not exist yet: that is an error, not a silent skip.
        expect(isKilnError(cred, 'AUTH_CONFIG')).toBe(true);
        const without = await lookupCredentials(host, { env });
        expect(without).toEqual({ username: user, password: `pw-${user}`, source: paths[which] });
      } else {
        expect(cred).toEqual({ username: 'a', password: 'pw-a', source: paths.authfile });
      }
    }
  });

  it('falls through files that lack the host and returns undefined when none has it', async () => {
    env = { ...env, DOCKER_CONFIG: join(dir, 'docker'), XDG_CONFIG_HOME: join(dir, 'xdg') };
    await writeJson(join(dir, 'docker', 'config.json'), { auths: { 'other.example': { auth: b64('o:p') } } });
    await writeJson(join(dir, 'xdg', 'containers', 'auth.json'), { auths: { 'reg.example': { username: 'u', password: 'p' } } });
    expect(await lookupCredentials('reg.example', { env })).toMatchObject({ username: 'u', password: 'p' });
    expect(await lookupCredentials('nobody.example', { env })).toBeUndefined();
  });
});

describe('auths keys', () => {
  it.each([
    ['reg.example:5000', 'reg.example:5000'],
    ['https://reg.example:5000', 'reg.example:5000'],
    ['http://reg.example:5000', 'reg.example:5000'],
    ['https://reg.example:5000/v1/', 'reg.example:5000'],
    ['https://index.docker.io/v1/', 'docker.io'],
    ['docker.io', 'docker.io'],
  ])('key %s matches host %s', async (key, host) => {
    await writeJson(join(dir, 'home', '.docker', 'config.json'), { auths: { [key]: { auth: b64('user:pa:ss') } } });
    expect(await lookupCredentials(host, { env })).toMatchObject({ username: 'user', password: 'pa:ss' });
  });

  it('ignores other hosts, ports and namespace-scoped keys', async () => {
    await writeJson(join(dir, 'home', '.docker', 'config.json'), {
      auths: { 'reg.example': { auth: b64('a:b') }, 'reg.example:5000/team/app': { auth: b64('c:d') }, 'https://reg.example.evil': { auth: b64('e:f') } },
    });
    expect(await lookupCredentials('reg.example:5000', { env })).toBeUndefined();
  });

  it('reads an identity token and skips empty placeholder entries', async () => {
    await writeJson(join(dir, 'home', '.docker', 'config.json'), {
      auths: { 'id.example': { username: 'u', identitytoken: 'refresh' }, 'empty.example': {} },
    });
    expect(await lookupCredentials('id.example', { env })).toMatchObject({ username: 'u', identityToken: 'refresh' });
    expect(await lookupCredentials('empty.example', { env })).toBeUndefined();
  });

  it('reports a malformed file without quoting it', async () => {
    await mkdir(join(dir, 'home', '.docker'), { recursive: true });
    await writeFile(join(dir, 'home', '.docker', 'config.json'), '{"auths": {"x": {"auth": "c2VjcmV0LXZhbHVl"');
    const err = await lookupCredentials('x', { env }).catch((e: unknown) => e);
    expect(isKilnError(err, 'AUTH_CONFIG')).toBe(true);
    expect((err as Error).message).not.toContain('c2VjcmV0');
  });
});

describe('credential helpers', () => {
  it('uses credHelpers[host], then credsStore, passing the server URL on stdin', async () => {
    await writeJson(join(dir, 'home', '.docker', 'config.json'), {
      credHelpers: { 'helper.example': 'test' },
      credsStore: 'test',
      auths: { 'store.example': {}, 'inline.example': { auth: b64('inline:pw') } },
    });
    expect(await lookupCredentials('helper.example', { env })).toEqual({ username: 'helper-user', password: 'helper-secret', source: 'docker-credential-test' });
    expect(await lookupCredentials('store.example', { env })).toEqual({ username: 'store-user', password: 'store-secret', source: 'docker-credential-test' });
    expect(await lookupCredentials('docker.io', { env })).toMatchObject({ username: 'hub-user', password: 'hub-secret' });
    expect(await lookupCredentials('token.example', { env })).toMatchObject({ identityToken: 'identity-secret' });
    expect(await lookupCredentials('inline.example', { env })).toMatchObject({ username: 'inline', password: 'pw' });
    // "credentials not found" is an answer, not an error.
    expect(await lookupCredentials('unknown.example', { env })).toBeUndefined();
  });

  it('names a missing or failing helper, never the secret', async () => {
    await writeJson(join(dir, 'home', '.docker', 'config.json'), { credHelpers: { 'a.example': 'absent', 'broken.example': 'test' } });
    const missing = await lookupCredentials('a.example', { env }).catch((e: unknown) => e);
    expect(isKilnError(missing, 'AUTH_CONFIG')).toBe(true);
    expect((missing as Error).message).toContain('docker-credential-absent');
    const broken = await lookupCredentials('broken.example', { env }).catch((e: unknown) => e);
    expect((broken as Error).message).toBe('credential helper docker-credential-test failed (exit 3): keychain locked');
  });
});

describe('saveCredentials / removeCredentials', () => {
  it('writes auths atomically with mode 0600, keeping other keys', async () => {
    const file = join(dir, 'cfg', 'config.json');
    await writeJson(file, { auths: { 'keep.example': { auth: b64('k:k') } }, credsStore: 'desktop', experimental: 'enabled' });
    await saveCredentials(file, 'localhost:5000', 'alice', 's3cret');
    await saveCredentials(file, 'docker.io', 'bob', 'hub');
    const doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(doc).toEqual({
      auths: {
        'keep.example': { auth: b64('k:k') },
        'localhost:5000': { auth: b64('alice:s3cret') },
        'https://index.docker.io/v1/': { auth: b64('bob:hub') },
      },
      credsStore: 'desktop',
      experimental: 'enabled',
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dirname(file))).toEqual(['config.json']);
    expect(await lookupCredentials('localhost:5000', { authfile: file, env: { HOME: env.HOME } })).toMatchObject({ username: 'alice', password: 's3cret' });
  });

  it('creates the file and its directory, and replaces an existing entry under its own key', async () => {
    const file = join(dir, 'new', 'deep', 'auth.json');
    await saveCredentials(file, 'reg.example', 'u1', 'p1');
    await writeJson(file, { auths: { 'https://reg.example': { auth: b64('old:old'), email: 'x@y' } } });
    await saveCredentials(file, 'reg.example', 'u2', 'p2');
    const doc = JSON.parse(await readFile(file, 'utf8')) as { auths: Record<string, unknown> };
    expect(doc.auths).toEqual({ 'https://reg.example': { auth: b64('u2:p2'), email: 'x@y' } });
  });

  it('removes every form of the host and says when there was none', async () => {
    const file = join(dir, 'config.json');
    await writeJson(file, { auths: { 'reg.example': {}, 'https://reg.example/v1/': {}, 'other.example': {} } });
    expect(await removeCredentials(file, 'reg.example')).toBe(true);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ auths: { 'other.example': {} } });
    expect(await removeCredentials(file, 'reg.example')).toBe(false);
    expect(await removeCredentials(join(dir, 'absent.json'), 'reg.example')).toBe(false);
  });

  it('defaults to $DOCKER_CONFIG/config.json, else ~/.docker/config.json', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/d', HOME: '/h' })).toBe('/d/config.json');
    expect(defaultDockerConfigPath({ HOME: '/h' })).toBe('/h/.docker/config.json');
  });
});
