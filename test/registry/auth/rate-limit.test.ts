import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../../registry/auth/rate-limit.js';
import { basic, type SecureRegistry, startSecureRegistry } from './helpers.js';

/** GET from a chosen loopback source address (127.0.0.0/8 all reaches the server on 127.0.0.1). */
function get(url: string, path: string, from: string, headers: Record<string, string> = {}): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { localAddress: from, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('RateLimiter', () => {
  it('allows a burst, then one request per refill, with Retry-After in whole seconds', () => {
    let now = 0;
    const limiter = new RateLimiter({ requestsPerSecond: 0.5, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) limiter.take('k', 'client');
    expect(() => limiter.take('k', 'client')).toThrow(expect.objectContaining({ code: 'TOOMANYREQUESTS', status: 429, headers: { 'Retry-After': '2' } }));
    limiter.take('other', 'another client');
    now = 2000;
    limiter.take('k', 'client');
    expect(() => limiter.take('k', 'client')).toThrow(/too many requests from client: the limit is 0.5 per second with bursts of 3/);
  });
});

describe('rate limits on a running registry', () => {
  let registry: SecureRegistry | undefined;
  afterEach(async () => {
    await registry?.close();
    registry = undefined;
  });

  it('answers 429 TOOMANYREQUESTS with Retry-After per client address, without auth', async () => {
    registry = await startSecureRegistry({ yaml: 'rateLimit: { requestsPerSecond: 0.2, burst: 3 }\n' });
    for (let i = 0; i < 3; i++) expect((await get(registry.url, '/v2/', '127.0.0.1')).status).toBe(200);
    const limited = await get(registry.url, '/v2/', '127.0.0.1');
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toBe('5');
    expect(JSON.parse(limited.body).errors[0]).toMatchObject({ code: 'TOOMANYREQUESTS', message: expect.stringContaining('127.0.0.1') });
    // Another address has a bucket of its own.
    expect((await get(registry.url, '/v2/', '127.0.0.2')).status).toBe(200);
  });

  it('limits each user across addresses, and the token endpoint too', async () => {
    registry = await startSecureRegistry({
      users: { alice: 'a', bob: 'b' },
      yaml: 'auth:\n  htpasswd: { path: HTPASSWD }\n  token: {}\nrateLimit: { requestsPerSecond: 0.1, burst: 2 }\n',
    });
    const alice = basic('alice', 'a');
    expect((await get(registry.url, '/v2/', '127.0.0.1', alice)).status).toBe(200);
    expect((await get(registry.url, '/v2/', '127.0.0.2', alice)).status).toBe(200);
    const limited = await get(registry.url, '/v2/', '127.0.0.3', alice);
    expect(limited.status).toBe(429);
    expect(JSON.parse(limited.body).errors[0].message).toContain('user alice');
    expect(Number(limited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await get(registry.url, '/v2/', '127.0.0.4', basic('bob', 'b'))).status).toBe(200);
    expect((await get(registry.url, '/token?service=kiln', '127.0.0.4')).status).toBe(200);
    expect((await get(registry.url, '/token?service=kiln', '127.0.0.4')).status).toBe(429);
  });
});
