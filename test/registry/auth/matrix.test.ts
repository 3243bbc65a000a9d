import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, bearer, fetchToken, pushImage, type PushedImage, type SecureRegistry, startSecureRegistry } from './helpers.js';

// The auth matrix of issue 4 over raw HTTP, against a real server with token authentication: every subject
// × pull, push, delete, mount and catalog on team-a's repository, each expectation asserted.

const SERVICE = 'kiln-test';
const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw' };
const CONFIG = `
auth:
  htpasswd: { realm: kiln-test, path: HTPASSWD }
  token: { issuer: kiln-test-issuer, service: ${SERVICE}, expiration: 5m }
groups:
  team-b: [bob]
access:
  - repository: "team-a/**"
    users: [alice]
    actions: [pull, push, delete]
  - repository: "team-b/**"
    groups: [team-b]
    actions: [pull, push, delete]
  - repository: "public/**"
    anonymous: [pull]
    users: ["*"]
    actions: [pull, push]
`;

type Op = 'pull' | 'push' | 'delete' | 'mount' | 'catalog';
const OPS: Op[] = ['pull', 'push', 'delete', 'mount', 'catalog'];

let registry: SecureRegistry;
let teamA: PushedImage;
let signingKey: KeyObject;

beforeAll(async () => {
  registry = await startSecureRegistry({ yaml: CONFIG, users: USERS });
  teamA = await pushImage(registry.url, 'team-a/app', 'v1', basic('alice', USERS.alice));
  await pushImage(registry.url, 'team-b/app', 'v1', basic('bob', USERS.bob));
  await pushImage(registry.url, 'public/base', 'v1', basic('carol', USERS.carol));
  signingKey = createPrivateKey(await readFile(join(registry.data, 'token-key.pem'), 'utf8'));
});
afterAll(() => registry?.close());

function scopes(op: Op, subject: string): string[] {
  switch (op) {
    case 'pull': return ['repository:team-a/app:pull'];
    case 'push': return ['repository:team-a/app:pull,push'];
    case 'delete': return ['repository:team-a/app:delete'];
    case 'mount': return [`repository:public/mount-${subject}:pull,push`, 'repository:team-a/app:pull'];
    case 'catalog': return ['registry:catalog:*'];
  }
}

/** A token like the registry's own, but with the given key and times. */
async function forge(key: KeyObject, op: Op, times: { iat: number; exp: number }): Promise<string> {
  const access = scopes(op, 'alice').map((s) => {
    const [type = '', name = '', actions = ''] = s.split(':');
    return { type, name, actions: actions.split(',') };
  });
  return new SignJWT({ access })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('kiln-test-issuer')
    .setAudience(SERVICE)
    .setSubject('alice')
    .setIssuedAt(times.iat)
    .setNotBefore(times.iat)
    .setExpirationTime(times.exp)
    .sign(key);
}

const now = (): number => Math.floor(Date.now() / 1000);
const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;

/** Each subject: how it authenticates for an operation. */
const SUBJECTS: Record<string, (op: Op) => Promise<Record<string, string>>> = {
  anonymous: async () => ({}),
  'alice (Basic)': async () => basic('alice', USERS.alice),
  'alice (token)': async (op) => bearer(await fetchToken(registry.url, SERVICE, scopes(op, 'alice'), basic('alice', USERS.alice))),
  'bob, other team (Basic)': async () => basic('bob', USERS.bob),
  'bob, other team (token)': async (op) => bearer(await fetchToken(registry.url, SERVICE, scopes(op, 'bob'), basic('bob', USERS.bob))),
  'wrong password': async () => basic('alice', 'not-her-password'),
  'expired token': async (op) => bearer(await forge(signingKey, op, { iat: now() - 900, exp: now() - 600 })),
  'token signed by another key': async (op) => bearer(await forge(otherKey, op, { iat: now(), exp: now() + 300 })),
  'token for another scope': async () => bearer(await fetchToken(registry.url, SERVICE, ['repository:public/base:pull'], basic('alice', USERS.alice))),
  'malformed token': async () => bearer('not.a-valid.jwt'),
};

const U = 401;
/** Expected status per subject and operation; 403 is DENIED, 401 UNAUTHORIZED with a challenge. */
const EXPECTED: Record<string, Record<Op, number>> = {
  anonymous: { pull: U, push: U, delete: U, mount: U, catalog: U },
  'alice (Basic)': { pull: 200, push: 202, delete: 202, mount: 201, catalog: 200 },
  'alice (token)': { pull: 200, push: 202, delete: 202, mount: 201, catalog: 200 },
  // bob may push to public/, but not read team-a/: the mount silently becomes an upload (202).
  'bob, other team (Basic)': { pull: 403, push: 403, delete: 403, mount: 202, catalog: 200 },
  'bob, other team (token)': { pull: 403, push: 403, delete: 403, mount: 202, catalog: 200 },
  'wrong password': { pull: U, push: U, delete: U, mount: U, catalog: U },
  'expired token': { pull: U, push: U, delete: U, mount: U, catalog: U },
  'token signed by another key': { pull: U, push: U, delete: U, mount: U, catalog: U },
  'token for another scope': { pull: U, push: U, delete: U, mount: U, catalog: U },
  'malformed token': { pull: U, push: U, delete: U, mount: U, catalog: U },
};

async function perform(op: Op, subject: string, headers: Record<string, string>): Promise<Response> {
  const base = registry.url;
  switch (op) {
    case 'pull':
      return fetch(`${base}/v2/team-a/app/manifests/v1`, { headers: { ...headers, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    case 'push':
      return fetch(`${base}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers });
    case 'delete': {
      // A manifest of its own for every subject, so a permitted delete does not take another case's target.
      const doomed = await pushImage(base, 'team-a/app', `doomed-${subject.replace(/\W+/g, '-')}`, basic('alice', USERS.alice));
      return fetch(`${base}/v2/team-a/app/manifests/${doomed.digest}`, { method: 'DELETE', headers });
    }
    case 'mount':
      return fetch(`${base}/v2/public/mount-${subject.split(/\W/)[0] ?? ''}/blobs/uploads/?mount=${teamA.layer}&from=team-a/app`, { method: 'POST', headers });
    case 'catalog':
      return fetch(`${base}/v2/_catalog`, { headers });
  }
}

describe('auth matrix (token authentication)', () => {
  for (const [subject, headersFor] of Object.entries(SUBJECTS)) {
    for (const op of OPS) {
      const status = EXPECTED[subject]?.[op];
      it(`${subject} × ${op} → ${status}`, async () => {
        const headers = await headersFor(op);
        const res = await perform(op, subject, headers);
        const text = await res.text();
        expect(res.status, text).toBe(status);
        if (status === 401) {
          expect(JSON.parse(text).errors[0].code).toBe('UNAUTHORIZED');
          const challenge = res.headers.get('www-authenticate') ?? '';
          expect(challenge).toMatch(new RegExp(`^Bearer realm="${registry.url}/token",service="${SERVICE}"`));
          if (op !== 'catalog' && op !== 'mount') expect(challenge).toContain(`scope="repository:team-a/app:`);
          if (subject.includes('token') && subject !== 'token for another scope') expect(challenge).toContain('error="invalid_token"');
          if (subject === 'token for another scope') expect(challenge).toContain('error="insufficient_scope"');
        }
        if (status === 403) {
          const error = JSON.parse(text).errors[0];
          expect(error.code).toBe('DENIED');
          expect(error.message).toMatch(/^user bob may not .*team-a\/app/);
        }
        if (op === 'catalog' && status === 200) {
          const { repositories } = JSON.parse(text) as { repositories: string[] };
          expect(repositories).toContain('public/base');
          const own = subject.startsWith('alice') ? 'team-a/app' : 'team-b/app';
          const other = subject.startsWith('alice') ? 'team-b/app' : 'team-a/app';
          expect(repositories).toContain(own);
          expect(repositories).not.toContain(other);
        }
      });
    }
  }

  it('lets anyone pull public/ without credentials, and nobody anonymous push there', async () => {
    expect((await fetch(`${registry.url}/v2/public/base/manifests/v1`)).status).toBe(200);
    const push = await fetch(`${registry.url}/v2/public/base/blobs/uploads/`, { method: 'POST' });
    expect(push.status).toBe(401);
    expect(push.headers.get('www-authenticate')).toContain('scope="repository:public/base:pull,push"');
  });

  it('answers /v2/ with 401 and a Bearer challenge, and 200 to valid credentials or tokens', async () => {
    const anonymous = await fetch(`${registry.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(`Bearer realm="${registry.url}/token",service="${SERVICE}"`);
    expect((await fetch(`${registry.url}/v2/`, { headers: basic('bob', USERS.bob) })).status).toBe(200);
    expect((await fetch(`${registry.url}/v2/`, { headers: bearer(await fetchToken(registry.url, SERVICE, [])) })).status).toBe(200);
    expect((await fetch(`${registry.url}/v2/`, { headers: basic('bob', 'wrong') })).status).toBe(401);
  });

  it('refuses forged and foreign tokens: alg none or HS256, another audience or issuer, a bad access claim', async () => {
    const claims = { access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }] };
    const sign = (overrides: { aud?: string; iss?: string; access?: unknown }): Promise<string> =>
      new SignJWT({ ...claims, ...('access' in overrides ? { access: overrides.access } : {}) })
        .setProtectedHeader({ alg: 'ES256' })
        .setIssuer(overrides.iss ?? 'kiln-test-issuer')
        .setAudience(overrides.aud ?? SERVICE)
        .setSubject('alice')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(signingKey);
    const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = { ...claims, iss: 'kiln-test-issuer', aud: SERVICE, sub: 'alice', iat: now(), exp: now() + 300 };
    // Key confusion: an HMAC keyed with the registry's public key, which anyone may know.
    const publicPem = createPublicKey(signingKey).export({ type: 'spki', format: 'pem' }).toString();
    const hs256 = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(publicPem));
    const tokens = {
      'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`,
      HS256: hs256,
      'another audience': await sign({ aud: 'other-registry' }),
      'another issuer': await sign({ iss: 'someone-else' }),
      'access claim not a list': await sign({ access: 'everything' }),
      'a long garbage string': 'x'.repeat(8000),
      'two segments': 'abc.def',
    };
    for (const [what, token] of Object.entries(tokens)) {
      const res = await fetch(`${registry.url}/v2/team-a/app/manifests/v1`, { headers: bearer(token) });
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toContain('error="invalid_token"');
    }
    expect((await fetch(`${registry.url}/v2/team-a/app/manifests/v1`, { headers: bearer(await sign({})) })).status).toBe(200);
  });

  it('counts refused credentials, tokens and accesses for the metrics', () => {
    const reasons = new Set(registry.failures.map((f) => f.reason));
    expect(reasons).toEqual(new Set(['credentials', 'token', 'denied']));
    expect(registry.failures.filter((f) => f.reason === 'denied').every((f) => f.user === 'bob' && f.repository === 'team-a/app')).toBe(true);
    expect(JSON.stringify(registry.failures)).not.toMatch(/pw|not-her-password|eyJ/);
  });
});

describe('the token endpoint', () => {
  it('grants the intersection of what is asked and what is permitted, in an ES256 JWT', async () => {
    const query = 'service=kiln-test&scope=repository:team-a/app:pull,push,delete&scope=repository:team-b/app:pull repository:public/base:pull,push';
    const res = await fetch(`${registry.url}/token?${query}`, { headers: basic('alice', USERS.alice) });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Math.abs(Date.parse(body.issued_at) - Date.now())).toBeLessThan(5000);
    expect(decodeProtectedHeader(body.token).alg).toBe('ES256');
    const claims = decodeJwt(body.token);
    expect(claims).toMatchObject({ iss: 'kiln-test-issuer', aud: SERVICE, sub: 'alice' });
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(300);
    expect(claims.access).toEqual([
      { type: 'repository', name: 'team-a/app', actions: ['pull', 'push', 'delete'] },
      { type: 'repository', name: 'public/base', actions: ['pull', 'push'] },
    ]);
  });

  it('issues anonymous tokens with the anonymous grants only, and empty ones to the wrong team', async () => {
    const anonymous = decodeJwt(await fetchToken(registry.url, SERVICE, ['repository:public/base:pull,push', 'repository:team-a/app:pull']));
    expect(anonymous.sub).toBeUndefined();
    expect(anonymous.access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
    const bob = decodeJwt(await fetchToken(registry.url, SERVICE, ['repository:team-a/app:*'], basic('bob', USERS.bob)));
    expect(bob.access).toEqual([]);
  });

  it('refuses bad credentials (401, Basic challenge), another service (403) and malformed scopes (400)', async () => {
    const wrong = await fetch(`${registry.url}/token?service=${SERVICE}`, { headers: basic('alice', 'nope') });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Basic realm="kiln-test",charset="UTF-8"');
    const unknownUser = await fetch(`${registry.url}/token?service=${SERVICE}`, { headers: basic('mallory', 'x') });
    expect(unknownUser.status).toBe(401);
    const service = await fetch(`${registry.url}/token?service=elsewhere`, { headers: basic('alice', USERS.alice) });
    expect(service.status).toBe(403);
    expect(((await service.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('DENIED');
    for (const scope of ['repository', 'repository:team-a/app', ':x:pull', 'repository:Team-A/App:pull']) {
      const res = await fetch(`${registry.url}/token?service=${SERVICE}&scope=${encodeURIComponent(scope)}`);
      expect(res.status, scope).toBe(400);
    }
    expect((await fetch(`${registry.url}/token`, { method: 'POST' })).status).toBe(405);
  });

  it('keeps its signing key in the data directory, readable by the owner only', async () => {
    expect((await stat(join(registry.data, 'token-key.pem'))).mode & 0o777).toBe(0o600);
  });

  it('sends a client whose token lacks a permitted scope back for a new one, then accepts it', async () => {
    const pullOnly = await fetchToken(registry.url, SERVICE, ['repository:team-a/app:pull'], basic('alice', USERS.alice));
    const refused = await fetch(`${registry.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer(pullOnly) });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('scope="repository:team-a/app:pull,push",error="insufficient_scope"');
    const pushToken = await fetchToken(registry.url, SERVICE, ['repository:team-a/app:pull,push'], basic('alice', USERS.alice));
    expect((await fetch(`${registry.url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers: bearer(pushToken) })).status).toBe(202);
  });
});
