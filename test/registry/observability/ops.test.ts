import type { Request } from 'express';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '../../../oci/digest.js';
import { RegistryError } from '../../../registry/errors.js';
import type { AccessLogEntry } from '../../../registry/observability/access-log.js';
import { metricsOf, RegistryMetrics } from '../../../registry/observability/metrics.js';
import { imageManifest, pushBlob, putManifest, startTestRegistry, type TestRegistry } from '../helpers.js';

const ALICE = `Basic ${Buffer.from('alice:s3cret-password').toString('base64')}`;
const MALLORY = `Basic ${Buffer.from('mallory:guessed-wrong').toString('base64')}`;
const TOKEN = 'Bearer eyJhbGciOiJFUzI1NiJ9.secret-token-payload.sig';

/** A stand-in for the auth engineer's authorizer: records the user, counts refused credentials. */
async function authorize(req: Request): Promise<void> {
  const header = req.headers.authorization;
  if (header === undefined) return;
  if (header === ALICE) {
    if (req.res) req.res.locals.user = 'alice';
    return;
  }
  metricsOf(req)?.authFailures.inc({ reason: header.startsWith('Bearer') ? 'token' : 'credentials' });
  throw new RegistryError('UNAUTHORIZED', 'authentication required');
}

let reg: TestRegistry;
let lines: string[];
beforeEach(async () => {
  lines = [];
  reg = await startTestRegistry({ deps: { metrics: new RegistryMetrics(), accessLog: (line) => lines.push(line), authorize } });
});
afterEach(() => reg.stop({ removeDir: true }));

/** Samples of a Prometheus text exposition, by `name{labels}` as written. */
function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
    expect(m, `malformed sample line: ${line}`).not.toBeNull();
    samples.set(m?.[1] ?? '', Number(m?.[2]));
  }
  return samples;
}

describe('/healthz and /readyz', () => {
  it('answers liveness and readiness without authentication and without access log lines', async () => {
    const live = await fetch(`${reg.url}/healthz`, { headers: { authorization: MALLORY } });
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    expect((await fetch(`${reg.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
    const ready = await fetch(`${reg.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toEqual({ status: 'ok', checks: { database: 'ok', storage: 'ok' } });
    expect(lines).toEqual([]);
  });

  it('is not ready while shutting down or when the database fails', async () => {
    reg.app.lifecycle.draining = true;
    const draining = await fetch(`${reg.url}/readyz`);
    expect(draining.status).toBe(503);
    expect(await draining.json()).toEqual({ status: 'unavailable', checks: { database: 'ok', storage: 'ok', shutdown: 'in progress' } });
    expect((await fetch(`${reg.url}/healthz`)).status).toBe(200);
    reg.app.lifecycle.draining = false;
    await reg.metadata.close();
    const broken = await fetch(`${reg.url}/readyz`);
    expect(broken.status).toBe(503);
    expect(await broken.json()).toEqual({ status: 'unavailable', checks: { database: 'failed', storage: 'ok' } });
  });
});

describe('/metrics', () => {
  it('counts requests by route, method and status, bytes in and out, uploads and auth failures', async () => {
    const name = 'obs/app';
    const image = await imageManifest(reg.url, name); // two monolithic uploads
    const blob = Buffer.alloc(10_000, 7);
    await pushBlob(reg.url, name, blob);
    expect((await putManifest(reg.url, name, 'v1', image.bytes, image.mediaType)).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await fetch(`${reg.url}/v2/${name}/manifests/v1`)).status).toBe(200);
    const missing = await fetch(`${reg.url}/v2/${name}/manifests/nope`);
    const missingBody = await missing.text();
    expect(missing.status).toBe(404);
    expect((await fetch(`${reg.url}/v2/${name}/blobs/${digestOf(blob)}`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${reg.url}/v2/${name}/blobs/uploads/`, { method: 'POST' })).status).toBe(202);
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: MALLORY } })).status).toBe(401);
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: TOKEN } })).status).toBe(401);
    expect((await fetch(`${reg.url}/nothing/here`)).status).toBe(404);

    const res = await fetch(`${reg.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    expect(text).toContain('# TYPE kiln_http_requests_total counter');
    expect(text).toContain('# TYPE kiln_http_request_duration_seconds histogram');
    const m = parseMetrics(text);
    const requests = (route: string, method: string, status: number) => m.get(`kiln_http_requests_total{route="${route}",method="${method}",status="${status}"}`);
    expect(requests('manifests', 'GET', 200)).toBe(3);
    expect(requests('manifests', 'GET', 404)).toBe(1);
    expect(requests('manifests', 'PUT', 201)).toBe(1);
    expect(requests('uploads', 'POST', 201)).toBe(3);
    expect(requests('uploads', 'POST', 202)).toBe(1);
    expect(requests('blobs', 'HEAD', 200)).toBe(1);
    expect(requests('base', 'GET', 401)).toBe(2);
    expect(requests('unknown', 'GET', 404)).toBe(1);
    expect(m.get('kiln_http_request_bytes_total{route="uploads"}')).toBeGreaterThanOrEqual(blob.length + 2);
    expect(m.get('kiln_http_request_bytes_total{route="manifests"}')).toBe(image.bytes.length);
    expect(m.get('kiln_http_response_bytes_total{route="manifests"}')).toBe(3 * image.bytes.length + Buffer.byteLength(missingBody));
    expect(m.get('kiln_http_request_duration_seconds_count{route="manifests"}')).toBe(5);
    expect(m.get('kiln_http_request_duration_seconds_bucket{route="manifests",le="+Inf"}')).toBe(5);
    expect(m.get('kiln_http_requests_in_flight')).toBe(0);
    expect(m.get('kiln_uploads_in_flight')).toBe(0);
    expect(m.get('kiln_upload_sessions')).toBe(1);
    expect(m.get('kiln_auth_failures_total{reason="credentials"}')).toBe(1);
    expect(m.get('kiln_auth_failures_total{reason="token"}')).toBe(1);
    expect(m.get('kiln_gc_bytes_freed_total')).toBe(0);
    // Scrapes and probes are not requests of the API: a second scrape counts nothing new.
    const again = parseMetrics(await (await fetch(`${reg.url}/metrics`)).text());
    expect(again.get('kiln_http_requests_total{route="manifests",method="GET",status="200"}')).toBe(3);
    expect([...again.keys()].some((k) => k.includes('metrics'))).toBe(false);
  });
});

describe('access log', () => {
  it('writes one JSON line per request with its fields, the user when known, and never credentials', async () => {
    const name = 'logs/app';
    const image = await imageManifest(reg.url, name);
    expect((await putManifest(reg.url, name, 'v1', image.bytes, image.mediaType)).status).toBe(201);
    lines.length = 0;
    expect((await fetch(`${reg.url}/v2/${name}/manifests/v1?trace=1`, { headers: { authorization: ALICE, 'user-agent': 'kiln-test/1' } })).status).toBe(200);
    expect((await fetch(`${reg.url}/v2/${name}/manifests/v1`, { headers: { authorization: MALLORY } })).status).toBe(401);
    expect((await fetch(`${reg.url}/v2/${name}/tags/list`, { headers: { authorization: TOKEN } })).status).toBe(401);
    const blob = Buffer.alloc(5000, 1);
    await pushBlob(reg.url, name, blob);
    await new Promise((r) => setTimeout(r, 20));

    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      for (const secret of ['s3cret-password', 'guessed-wrong', 'secret-token-payload', 'Basic ', 'Bearer', 'authorization', 'Authorization']) expect(line).not.toContain(secret);
    }
    const entries = lines.map((l) => JSON.parse(l) as AccessLogEntry);
    const [get, refused, token, upload] = entries;
    expect(get).toEqual({
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      method: 'GET',
      path: `/v2/${name}/manifests/v1`,
      route: 'manifests',
      repository: name,
      status: 200,
      bytesIn: 0,
      bytesOut: image.bytes.length,
      durationMs: expect.any(Number),
      user: 'alice',
      remote: expect.stringMatching(/127\.0\.0\.1$/),
      userAgent: 'kiln-test/1',
    });
    expect(refused).toMatchObject({ method: 'GET', route: 'manifests', status: 401 });
    expect(refused?.user).toBeUndefined();
    expect(token).toMatchObject({ route: 'tags', repository: name, status: 401 });
    expect(upload).toMatchObject({ method: 'POST', route: 'uploads', repository: name, status: 201, bytesIn: blob.length, bytesOut: 0, path: `/v2/${name}/blobs/uploads/` });
  });
});
