import { describe, expect, it } from 'vitest';
import { errorFromBody, errorStatus, parseErrorBody } from '../../../oci/client/errors.js';
import { scopesCover, repositoryScope } from '../../../oci/client/scope.js';
import { backoffDelay, registryBaseUrl } from '../../../oci/client/transport.js';

describe('registry error bodies', () => {
  it('turns a Distribution error body into a KilnError naming registry, object and code', () => {
    const body = '{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{"reason":"bad layer"}}]}';
    const err = errorFromBody(400, 'Bad Request', body, { registry: 'localhost:5000', object: 'manifest app:1' });
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toBe('registry localhost:5000 refused manifest app:1: MANIFEST_INVALID: manifest invalid');
    expect(errorStatus(err)).toBe(400);
    expect(parseErrorBody(body)[0]?.detail).toEqual({ reason: 'bad layer' });
  });

  it('reports status and a one-line excerpt for non-JSON bodies, and nothing of HTML pages', () => {
    const text = errorFromBody(502, 'Bad Gateway', 'upstream\n  timed out', { registry: 'r.example', object: 'blob x' });
    expect(text.code).toBe('REGISTRY');
    expect(text.message).toBe('registry r.example refused blob x: HTTP 502 Bad Gateway: upstream timed out');
    const html = errorFromBody(404, '', '<html><body>nope</body></html>', { registry: 'r', object: 'm', notFound: 'MANIFEST_UNKNOWN' });
    expect(html.code).toBe('MANIFEST_UNKNOWN');
    expect(html.message).toBe('registry r refused m: HTTP 404');
  });

  it('maps statuses to codes when the body names none', () => {
    const ctx = { registry: 'r', object: 'o' };
    expect(errorFromBody(401, '', '', ctx).code).toBe('UNAUTHORIZED');
    expect(errorFromBody(403, '', '', ctx).code).toBe('DENIED');
    expect(errorFromBody(429, '', '', ctx).code).toBe('TOOMANYREQUESTS');
    expect(errorFromBody(500, '', '{"errors":[{"code":"WEIRD","message":"x"}]}', ctx).code).toBe('REGISTRY');
  });
});

describe('scopes', () => {
  it('lets a pull,push token serve pull requests but not the reverse', () => {
    expect(scopesCover([repositoryScope('a', 'push')], [repositoryScope('a', 'pull')])).toBe(true);
    expect(scopesCover([repositoryScope('a', 'pull')], [repositoryScope('a', 'push')])).toBe(false);
    expect(scopesCover([repositoryScope('a', 'push')], [repositoryScope('b', 'pull')])).toBe(false);
    expect(scopesCover(['registry:catalog:*'], ['registry:catalog:*'])).toBe(true);
    expect(scopesCover([], [])).toBe(true);
  });
});

describe('transport basics', () => {
  it('uses https except for loopback or insecure, and registry-1.docker.io for docker.io', () => {
    expect(registryBaseUrl('ghcr.io').href).toBe('https://ghcr.io/');
    expect(registryBaseUrl('localhost:5000').href).toBe('http://localhost:5000/');
    expect(registryBaseUrl('127.0.0.1:5000').href).toBe('http://127.0.0.1:5000/');
    expect(registryBaseUrl('registry.internal:5000', true).href).toBe('http://registry.internal:5000/');
    expect(registryBaseUrl('docker.io').href).toBe('https://registry-1.docker.io/');
  });

  it('backs off exponentially with jitter and honours Retry-After', () => {
    for (let attempt = 0; attempt < 4; attempt++) {
      const d = backoffDelay(attempt, 100) ?? -1;
      expect(d).toBeGreaterThanOrEqual(50 * 2 ** attempt);
      expect(d).toBeLessThanOrEqual(100 * 2 ** attempt);
    }
    expect(backoffDelay(0, 100, '2')).toBe(2000);
    expect(backoffDelay(0, 100, '3600')).toBeUndefined();
    const date = new Date(Date.now() + 5000).toUTCString();
    expect(backoffDelay(0, 100, date)).toBeGreaterThan(3000);
  });
});
