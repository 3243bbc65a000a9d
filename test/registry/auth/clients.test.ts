import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTarget } from '../../../oci/transports.js';
import { type KilnRun, run, runKiln } from '../../support/kiln.js';
import { requirePeer } from '../../support/peers.js';
import { makeRandomImage, type RandomImage, writeImageToTarget } from '../../support/random-image.js';
import { type ServeProcess, startServe } from '../../support/serve.js';
import { htpasswdText } from './helpers.js';

// `kiln serve` with token authentication as a real process, used by the clients people use: skopeo with
// --creds / --src-creds / --dest-creds, podman login + pull, and kiln login + kiln copy (the Bearer flow).

const USERS = { alice: 'alice-secret', bob: 'bob-secret' };
const CONFIG = (htpasswd: string, data: string): string => `
http: { addr: "127.0.0.1:0" }
storage: { filesystem: { rootdirectory: ${JSON.stringify(data)} } }
auth:
  htpasswd: { realm: kiln, path: ${JSON.stringify(htpasswd)} }
  token: { issuer: kiln, expiration: 300 }
access:
  - repository: "team-a/**"
    users: [alice]
    actions: [pull, push, delete]
  - repository: "public/**"
    anonymous: [pull]
    users: ["*"]
    actions: [pull, push]
`;

let work: string;
let server: ServeProcess;
let image: RandomImage;
let layout: string;

function skopeo(...args: string[]): Promise<KilnRun> {
  return run(requirePeer('skopeo', 'skopeo'), ['--insecure-policy', ...args]);
}

/** podman with storage of its own under the test's temp dir (vfs: nothing stays mounted). */
function podman(...args: string[]): Promise<KilnRun> {
  const store = join(work, 'podman');
  const global = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--tmpdir', join(store, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'none'];
  return run(requirePeer('podman', 'podman'), [...global, ...args], { env: { ...process.env, TMPDIR: join(work, 'scratch') } });
}

function ok(result: KilnRun): string {
  expect(result.code, result.stderr || result.stdout).toBe(0);
  return result.stdout;
}

function refused(result: KilnRun, pattern: RegExp): void {
  expect(result.code, result.stdout).not.toBe(0);
  expect(result.stderr).toMatch(pattern);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-auth-clients-'));
  await mkdir(join(work, 'scratch'));
  const htpasswd = join(work, 'htpasswd');
  await writeFile(htpasswd, htpasswdText(USERS));
  const config = join(work, 'config.yml');
  await writeFile(config, CONFIG(htpasswd, join(work, 'data')));
  server = await startServe(['--config', config]);
  image = await makeRandomImage({ layers: 2 });
  layout = join(work, 'layout');
  const target = await openTarget(`oci:${layout}:v1`, { mode: 'write' });
  await writeImageToTarget(target, image, 'v1');
  await target.close();
});

afterAll(async () => {
  if (work) await podman('rmi', '--all', '--force').catch(() => undefined);
  if (server && server.child.exitCode === null) await server.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('skopeo against kiln serve with token auth', () => {
  it('pushes with --dest-creds of a permitted user, reads with --creds, copies with --src-creds', async () => {
    const ref = `docker://${server.host}/team-a/app:v1`;
    ok(await skopeo('copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `alice:${USERS.alice}`, `oci:${layout}:v1`, ref));
    const inspected = JSON.parse(ok(await skopeo('inspect', '--tls-verify=false', '--creds', `alice:${USERS.alice}`, ref))) as { Digest: string };
    expect(inspected.Digest).toBe(image.manifest.digest);
    const back = join(work, 'skopeo-back');
    ok(await skopeo('copy', '--quiet', '--src-tls-verify=false', '--src-creds', `alice:${USERS.alice}`, ref, `oci:${back}:v1`));
    expect(JSON.parse(await readFile(join(back, 'index.json'), 'utf8')).manifests[0].digest).toBe(image.manifest.digest);
    // Registry to registry inside team-a: the blobs are mounted across repositories.
    ok(await skopeo('copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', `alice:${USERS.alice}`, '--dest-creds', `alice:${USERS.alice}`, ref, `docker://${server.host}/team-a/copy:v1`));
  });

  it('refuses anonymous, wrong-password and other-team access', async () => {
    const ref = `docker://${server.host}/team-a/app:v1`;
    refused(await skopeo('inspect', '--tls-verify=false', ref), /unauthorized|authentication required/i);
    refused(await skopeo('inspect', '--tls-verify=false', '--creds', 'alice:wrong', ref), /unauthorized|invalid username or password/i);
    refused(await skopeo('inspect', '--tls-verify=false', '--creds', `bob:${USERS.bob}`, ref), /denied|may not pull/i);
    refused(await skopeo('copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `bob:${USERS.bob}`, `oci:${layout}:v1`, `docker://${server.host}/team-a/bob:v1`), /denied|may not|403/i);
  });

  it('pulls public/ anonymously once a user pushed it there', async () => {
    const ref = `docker://${server.host}/public/app:v1`;
    ok(await skopeo('copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `bob:${USERS.bob}`, `oci:${layout}:v1`, ref));
    expect((JSON.parse(ok(await skopeo('inspect', '--tls-verify=false', ref))) as { Digest: string }).Digest).toBe(image.manifest.digest);
    refused(await skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${server.host}/public/anon:v1`), /unauthorized|authentication required/i);
  });
});

describe('podman against kiln serve with token auth', () => {
  it('logs in and pulls as a permitted user; refuses a wrong password and another team', async () => {
    ok(await skopeo('copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', `alice:${USERS.alice}`, `oci:${layout}:v1`, `docker://${server.host}/team-a/podman:v1`));
    const authfile = join(work, 'podman-auth.json');
    refused(await podman('login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '-p', 'wrong', server.host), /invalid username\/password|unauthorized/i);
    ok(await podman('login', '--tls-verify=false', '--authfile', authfile, '-u', 'alice', '-p', USERS.alice, server.host));
    ok(await podman('pull', '--quiet', '--tls-verify=false', '--authfile', authfile, `${server.host}/team-a/podman:v1`));
    const images = ok(await podman('images', '--format', '{{.Digest}}'));
    expect(images).toContain(image.manifest.digest);
    const bobAuth = join(work, 'podman-bob.json');
    ok(await podman('login', '--tls-verify=false', '--authfile', bobAuth, '-u', 'bob', '-p', USERS.bob, server.host));
    refused(await podman('pull', '--quiet', '--tls-verify=false', '--authfile', bobAuth, `${server.host}/team-a/podman:v1`), /denied|unauthorized|may not pull/i);
  });
});

describe('kiln login + kiln copy against kiln serve with token auth', () => {
  it('stores credentials that kiln copy then uses through the Bearer flow', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker'), REGISTRY_AUTH_FILE: undefined };
    const wrong = await runKiln(['login', '-u', 'alice', '--password-stdin', server.host], { env, input: 'wrong\n' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/rejected the credentials of user alice/);
    const login = await runKiln(['login', '-u', 'alice', '--password-stdin', server.host], { env, input: `${USERS.alice}\n` });
    expect(login.code, login.stderr).toBe(0);
    const push = await runKiln(['copy', `oci:${layout}:v1`, `${server.host}/team-a/kiln:v1`], { env });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout.trim()).toBe(image.manifest.digest);
    const pull = await runKiln(['copy', `${server.host}/team-a/kiln:v1`, `oci:${join(work, 'kiln-back')}:v1`], { env });
    expect(pull.code, pull.stderr).toBe(0);
    const tags = await runKiln(['tags', `${server.host}/team-a/kiln`], { env });
    expect(tags.stdout.trim()).toBe('v1');
  });

  it('reports a denial for another team and an authentication error without credentials', async () => {
    const env = { DOCKER_CONFIG: join(work, 'docker-bob'), REGISTRY_AUTH_FILE: undefined };
    expect((await runKiln(['login', '-u', 'bob', '--password-stdin', server.host], { env, input: `${USERS.bob}\n` })).code).toBe(0);
    const denied = await runKiln(['copy', `oci:${layout}:v1`, `${server.host}/team-a/bob:v1`], { env });
    expect(denied.code).toBe(1);
    // The first request is a HEAD of a blob: no body, so the client can only report the 403.
    expect(denied.stderr).toMatch(/denied|403/i);
    const anonymous = await runKiln(['copy', `${server.host}/team-a/kiln:v1`, `oci:${join(work, 'anon')}:v1`], { env: { DOCKER_CONFIG: join(work, 'nobody'), REGISTRY_AUTH_FILE: undefined } });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/authentication required/);
  });
});

describe('clients against kiln serve with htpasswd only (Basic on every request)', () => {
  it('kiln login + kiln copy and skopeo --creds work; other users are refused', async () => {
    const htpasswd = join(work, 'htpasswd-basic');
    await writeFile(htpasswd, htpasswdText(USERS));
    const config = join(work, 'basic.yml');
    const yaml = CONFIG(htpasswd, join(work, 'data-basic')).replace(/^ {2}token: .*\n/m, '');
    expect(yaml).not.toContain('token:');
    await writeFile(config, yaml);
    const basicServer = await startServe(['--config', config]);
    try {
      const env = { DOCKER_CONFIG: join(work, 'docker-basic'), REGISTRY_AUTH_FILE: undefined };
      expect((await runKiln(['login', '-u', 'alice', '--password-stdin', basicServer.host], { env, input: `${USERS.alice}\n` })).code).toBe(0);
      const push = await runKiln(['copy', `oci:${layout}:v1`, `${basicServer.host}/team-a/basic:v1`], { env });
      expect(push.code, push.stderr).toBe(0);
      const ref = `docker://${basicServer.host}/team-a/basic:v1`;
      expect((JSON.parse(ok(await skopeo('inspect', '--tls-verify=false', '--creds', `alice:${USERS.alice}`, ref))) as { Digest: string }).Digest).toBe(image.manifest.digest);
      refused(await skopeo('inspect', '--tls-verify=false', '--creds', `bob:${USERS.bob}`, ref), /denied|may not pull/i);
      refused(await skopeo('inspect', '--tls-verify=false', ref), /unauthorized|authentication required/i);
    } finally {
      await basicServer.stop();
    }
  });
});
