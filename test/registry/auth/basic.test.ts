import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, bearer, pushImage, type PushedImage, type SecureRegistry, startSecureRegistry } from './helpers.js';

// The auth matrix with htpasswd only (no auth.token): clients send Basic credentials on every request.

const USERS = { alice: 'alice-pw', bob: 'bob-pw' };
const CONFIG = `
auth:
  htpasswd: { realm: basic-realm, path: HTPASSWD }
access:
  - repository: "team-a/*"
    users: [alice]
    actions: [pull, push, delete]
  - repository: "team-a/*"
    users: ["*"]
    actions: []
  - repository: "**"
    users: ["*"]
    actions: [pull, push]
`;

type Op = 'pull' | 'push' | 'delete' | 'mount' | 'catalog';

let registry: SecureRegistry;
let image: PushedImage;

beforeAll(async () => {
  registry = await startSecureRegistry({ yaml: CONFIG, users: USERS });
  image = await pushImage(registry.url, 'team-a/app', 'v1', basic('alice', USERS.alice));
  await pushImage(registry.url, 'shared/app', 'v1', basic('bob', USERS.bob));
});
afterAll(() => registry?.close());

async function perform(op: Op, headers: Record<string, string>): Promise<Response> {
  const url = registry.url;
  switch (op) {
    case 'pull':
      return fetch(`${url}/v2/team-a/app/blobs/${image.layer}`, { headers });
    case 'push':
      return fetch(`${url}/v2/team-a/app/blobs/uploads/`, { method: 'POST', headers });
    case 'delete': {
      const doomed = await pushImage(url, 'team-a/app', `doomed-${Math.random().toString(36).slice(2)}`, basic('alice', USERS.alice));
      return fetch(`${url}/v2/team-a/app/manifests/${doomed.digest}`, { method: 'DELETE', headers });
    }
    case 'mount':
      return fetch(`${url}/v2/shared/copy/blobs/uploads/?mount=${image.layer}&from=team-a/app`, { method: 'POST', headers });
    case 'catalog':
      return fetch(`${url}/v2/_catalog`, { headers });
  }
}

const SUBJECTS: Record<string, Record<string, string>> = {
  anonymous: {},
  alice: basic('alice', USERS.alice),
  'bob (other team)': basic('bob', USERS.bob),
  'wrong password': basic('bob', 'alice-pw'),
  'a Bearer token': bearer('eyJhbGciOiJFUzI1NiJ9.e30.c2ln'),
  'malformed Basic': { authorization: 'Basic !!!' },
};

const EXPECTED: Record<string, Record<Op, number>> = {
  anonymous: { pull: 401, push: 401, delete: 401, mount: 401, catalog: 401 },
  alice: { pull: 200, push: 202, delete: 202, mount: 201, catalog: 200 },
  // The second rule shuts everyone else out of team-a before the catch-all grants them the rest.
  'bob (other team)': { pull: 403, push: 403, delete: 403, mount: 202, catalog: 200 },
  'wrong password': { pull: 401, push: 401, delete: 401, mount: 401, catalog: 401 },
  'a Bearer token': { pull: 401, push: 401, delete: 401, mount: 401, catalog: 401 },
  'malformed Basic': { pull: 401, push: 401, delete: 401, mount: 401, catalog: 401 },
};

describe('auth matrix (htpasswd, Basic)', () => {
  for (const [subject, headers] of Object.entries(SUBJECTS)) {
    for (const op of ['pull', 'push', 'delete', 'mount', 'catalog'] as const) {
      const status = EXPECTED[subject]?.[op];
      it(`${subject} × ${op} → ${status}`, async () => {
        const res = await perform(op, headers);
        const body = await res.text();
        expect(res.status, body).toBe(status);
        if (status === 401) {
          expect(res.headers.get('www-authenticate')).toBe('Basic realm="basic-realm",charset="UTF-8"');
          expect(JSON.parse(body).errors[0].code).toBe('UNAUTHORIZED');
        }
        if (status === 403) expect(JSON.parse(body).errors[0]).toMatchObject({ code: 'DENIED', message: expect.stringContaining('team-a/app') });
        if (op === 'catalog' && status === 200) {
          const { repositories } = JSON.parse(body) as { repositories: string[] };
          expect(repositories).toContain('shared/app');
          expect(repositories.includes('team-a/app')).toBe(subject === 'alice');
        }
      });
    }
  }

  it('has no token endpoint without auth.token', async () => {
    expect((await fetch(`${registry.url}/token?service=kiln`, { headers: basic('alice', USERS.alice) })).status).toBe(404);
  });

  it('reports the refusals for metrics, never with a password', () => {
    expect(registry.failures.length).toBeGreaterThan(0);
    expect(JSON.stringify(registry.failures)).not.toContain('alice-pw');
  });
});
