import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient, type RegistryClientOptions } from '../../../oci/client/registry-client.js';
import { digestOf } from '../../../oci/digest.js';
import { isKilnError, type KilnError } from '../../../oci/errors.js';
import { MediaType } from '../../../oci/media-types.js';
import { startDistribution, type RunningDistribution } from '../../support/distribution.js';
import { requirePeer } from '../../support/peers.js';

// The real registry with token auth (distribution token-auth spec); the token server is this test's own
// minimal implementation of the issuer side, signing ES256 JWTs with a throwaway certificate.
const SERVICE = 'kiln-test-registry';
const ISSUER = 'kiln-test-issuer';
const USER = 'alice';
const PASSWORD = 'alice-password';
const REFRESH_TOKEN = 'alice-refresh-token';

interface TokenRequest {
  method: string;
  user: string | undefined;
  scopes: string[];
}

let dir: string;
let key: KeyObject;
let certDer: string;
let tokenServer: Server;
let registry: RunningDistribution;
let tokenRequests: TokenRequest[] = [];

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function issue(user: string | undefined, scopes: string[]): string {
  const access = scopes.flatMap((scope) => {
    const last = scope.lastIndexOf(':');
    const first = scope.indexOf(':');
    const [type, name, wanted] = [scope.slice(0, first), scope.slice(first + 1, last), scope.slice(last + 1).split(',')];
    // Anonymous users may pull; alice may do anything, except push to "locked".
    const granted = wanted.filter((a) => a === 'pull' || (user === USER && !(a !== 'pull' && name === 'locked')));
    return granted.length > 0 ? [{ type, name, actions: granted }] : [];
  });
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES256', typ: 'JWT', x5c: [certDer] };
  const claims = { iss: ISSUER, sub: user ?? '', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

async function body(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

async function handleToken(req: IncomingMessage): Promise<{ status: number; json?: unknown }> {
  const url = new URL(req.url ?? '/', 'http://token');
  if (req.method === 'POST') {
    const form = new URLSearchParams(await body(req));
    const scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
    tokenRequests.push({ method: 'POST', user: USER, scopes });
    if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== REFRESH_TOKEN) return { status: 401 };
    return { status: 200, json: { access_token: issue(USER, scopes), expires_in: 300 } };
  }
  const scopes = url.searchParams.getAll('scope');
  const auth = req.headers.authorization;
  let user: string | undefined;
  if (auth) {
    const [name, pass] = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString('utf8').split(':');
    if (name !== USER || pass !== PASSWORD) {
      tokenRequests.push({ method: 'GET', user: name, scopes });
      return { status: 401 };
    }
    user = name;
  }
  tokenRequests.push({ method: 'GET', user, scopes });
  if (url.searchParams.get('service') !== SERVICE) return { status: 400 };
  return { status: 200, json: { token: issue(user, scopes), expires_in: 300 } };
}

function client(overrides: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ registry: registry.host, env: { HOME: dir }, credentials: { username: USER, password: PASSWORD }, ...overrides });
}

async function failure(promise: Promise<unknown>): Promise<KilnError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!isKilnError(err)) throw new Error(`expected a KilnError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-token-auth-'));
  const openssl = requirePeer('openssl', 'openssl');
  execFileSync(openssl, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=kiln-test-token-issuer', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  key = createPrivateKey(await readFile(join(dir, 'key.pem')));
  certDer = new X509Certificate(await readFile(join(dir, 'cert.pem'))).raw.toString('base64');
  tokenServer = createServer((req, res) => {
    handleToken(req).then(({ status, json }) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(json === undefined ? '{"details":"refused"}' : JSON.stringify(json));
    }, (err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', resolve));
  const address = tokenServer.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  registry = await startDistribution({
    token: { realm: `http://127.0.0.1:${port}/token`, service: SERVICE, issuer: ISSUER, rootCertBundle: join(dir, 'cert.pem') },
  });
});

afterAll(async () => {
  await registry?.stop();
  await new Promise((resolve) => tokenServer?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Bearer token flow against CNCF Distribution', () => {
  it('pushes and pulls with one cached token per scope set, sending credentials to the token server', async () => {
    const c = client();
    tokenRequests = [];
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
    const layer = randomBytes(3000);
    const configDesc = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
    const layerDesc = { mediaType: MediaType.OciLayer, digest: digestOf(layer), size: layer.length };
    await c.uploadBlob('app', configDesc, config);
    await c.uploadBlob('app', layerDesc, layer, { chunkSize: 1000 });
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: [layerDesc] }));
    await c.putManifest('app', '1', { bytes, mediaType: MediaType.OciManifest });
    expect((await c.getManifest('app', '1')).bytes.equals(bytes)).toBe(true);
    expect(await c.listTags('app')).toEqual(['1']);
    // One token (pull,push) served every request of the push and the pulls after it.
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]).toEqual({ method: 'GET', user: USER, scopes: ['repository:app:pull,push', 'repository:app:pull'] });

    // Anonymous pulls get a pull-only token.
    const anonymous = new RegistryClient({ registry: registry.host, env: { HOME: dir } });
    expect((await anonymous.getManifest('app', '1')).bytes.equals(bytes)).toBe(true);
  });

  it('checks credentials on ping (token without scope)', async () => {
    tokenRequests = [];
    await client().ping();
    expect(tokenRequests).toEqual([{ method: 'GET', user: USER, scopes: [] }]);
    const err = await failure(client({ credentials: { username: USER, password: 'nope' } }).ping());
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).toBe(`registry ${registry.host} rejected the credentials of user ${USER}`);
  });

  it('asks for a login when an anonymous token cannot push', async () => {
    const anonymous = new RegistryClient({ registry: registry.host, env: { HOME: dir } });
    const data = randomBytes(100);
    const err = await failure(anonymous.uploadBlob('app', { mediaType: MediaType.OciLayer, digest: digestOf(data), size: 100 }, data));
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe(`authentication required for ${registry.host}/app: run kiln login ${registry.host}`);
  });

  it('reports DENIED when the user authenticates but lacks the access', async () => {
    const data = randomBytes(100);
    const err = await failure(client().uploadBlob('locked', { mediaType: MediaType.OciLayer, digest: digestOf(data), size: 100 }, data));
    expect(err.code).toBe('DENIED');
    expect(err.message).toBe(`registry ${registry.host} denied user ${USER} pull,push access to ${registry.host}/locked`);
  });

  it('exchanges an identity token from the auth file for access tokens (OAuth2 refresh_token grant)', async () => {
    const authfile = join(dir, 'auth.json');
    await writeFile(authfile, JSON.stringify({ auths: { [registry.host]: { identitytoken: REFRESH_TOKEN } } }));
    tokenRequests = [];
    const c = new RegistryClient({ registry: registry.host, authfile, env: { HOME: dir } });
    expect(await c.listTags('app')).toEqual(['1']);
    expect(tokenRequests).toEqual([{ method: 'POST', user: USER, scopes: ['repository:app:pull'] }]);
  });
});
