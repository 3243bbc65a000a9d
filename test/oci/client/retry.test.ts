import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RegistryClient, type RegistryClientOptions } from '../../../oci/client/registry-client.js';
import { isRetryableNetworkError, type RequestEvent } from '../../../oci/client/transport.js';
import { digestOf } from '../../../oci/digest.js';
import { isKilnError, type KilnError } from '../../../oci/errors.js';
import { MediaType } from '../../../oci/media-types.js';
import { startDistribution, type RunningDistribution } from '../../support/distribution.js';

// The real registry behind a fault-injecting proxy: each fault answers (or cuts) the next matching
// request once; everything else is forwarded untouched, Host header included, so Locations point at the proxy.
interface Fault {
  method: string;
  path: RegExp;
  /** `reset` cuts the connection; a response with `cutAfter` sends that much of `body` (announcing all of it) and cuts. */
  action: 'reset' | { status: number; headers?: Record<string, string>; body?: Buffer; cutAfter?: number };
}

let registry: RunningDistribution;
let proxy: Server;
let proxyHost: string;
let faults: Fault[] = [];
let events: RequestEvent[] = [];

function forward(req: IncomingMessage, res: ServerResponse): void {
  const [host, port] = registry.host.split(':');
  const upstream = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

function client(overrides: Partial<RegistryClientOptions> = {}): RegistryClient {
  return new RegistryClient({ registry: proxyHost, env: { HOME: '/nonexistent' }, retryBaseMs: 5, onRequest: (e) => events.push(e), ...overrides });
}

async function failure(promise: Promise<unknown>): Promise<KilnError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  if (!isKilnError(err)) throw new Error(`expected a KilnError, got ${String(err)}`);
  return err;
}

async function pushSmallImage(c: RegistryClient, repo: string): Promise<Buffer> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const configDesc = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
  await c.uploadBlob(repo, configDesc, config);
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: [] }));
  await c.putManifest(repo, 'v1', { bytes, mediaType: MediaType.OciManifest });
  return bytes;
}

beforeAll(async () => {
  registry = await startDistribution();
  proxy = createServer((req, res) => {
    const i = faults.findIndex((f) => f.method === req.method && f.path.test(req.url ?? ''));
    const fault = i === -1 ? undefined : faults.splice(i, 1)[0];
    if (!fault) return forward(req, res);
    if (fault.action === 'reset') return void req.socket.destroy();
    const { status, headers, body, cutAfter } = fault.action;
    if (body && cutAfter !== undefined) {
      res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), ...headers });
      res.write(body.subarray(0, cutAfter), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end('injected failure');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const address = proxy.address();
  proxyHost = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((resolve) => proxy?.close(resolve));
  await registry?.stop();
});

beforeEach(() => {
  faults = [];
  events = [];
});

describe('transport retries against a flaky path to a real registry', () => {
  it('retries 5xx and connection resets on idempotent requests', async () => {
    const c = client();
    const bytes = await pushSmallImage(c, 'flaky');
    faults = [
      { method: 'GET', path: /manifests\/v1$/, action: { status: 503 } },
      { method: 'GET', path: /manifests\/v1$/, action: 'reset' },
      { method: 'GET', path: /manifests\/v1$/, action: { status: 502 } },
    ];
    events = [];
    expect((await c.getManifest('flaky', 'v1')).bytes.equals(bytes)).toBe(true);
    expect(events.map((e) => e.status ?? 'error')).toEqual([503, 'error', 502, 200]);
  });

  it('honours Retry-After on 429', async () => {
    const c = client();
    await pushSmallImage(c, 'limited');
    faults = [{ method: 'HEAD', path: /manifests\/v1$/, action: { status: 429, headers: { 'retry-after': '1' } } }];
    const started = Date.now();
    expect(await c.headManifest('limited', 'v1')).toBeDefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
  });

  it('gives up after maxRetries with the registry status in the error', async () => {
    const c = client({ maxRetries: 1 });
    faults = [
      { method: 'GET', path: /tags\/list/, action: { status: 500 } },
      { method: 'GET', path: /tags\/list/, action: { status: 500 } },
    ];
    const err = await failure(c.listTags('anything'));
    expect(err.code).toBe('REGISTRY');
    expect(err.message).toBe(`registry ${proxyHost} refused listing of tags of anything: HTTP 500 Internal Server Error: injected failure`);
    expect(err.detail).toEqual({ status: 500, errors: [] });
    expect(events).toHaveLength(2);
  });

  it('restarts a streamed upload from a fresh stream when the connection drops mid-upload', async () => {
    const c = client();
    const data = randomBytes(200_000);
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(data), size: data.length };
    let opened = 0;
    faults = [{ method: 'PUT', path: /blobs\/uploads\//, action: 'reset' }, { method: 'POST', path: /blobs\/uploads\/$/, action: { status: 503 } }];
    const outcome = await c.uploadBlob('restart', desc, () => {
      opened++;
      return Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]);
    });
    expect(outcome).toBe('uploaded');
    expect(opened).toBe(2);
    expect(await c.headBlob('restart', desc.digest)).toBe(data.length);
  });

  it('restarts a chunked upload whose PATCH fails', async () => {
    const c = client();
    const data = randomBytes(5_000);
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(data), size: data.length };
    faults = [{ method: 'PATCH', path: /blobs\/uploads\//, action: { status: 500 } }];
    expect(await c.uploadBlob('restart-chunked', desc, () => Readable.from([data]), { chunkSize: 2_000 })).toBe('uploaded');
    expect(events.filter((e) => e.method === 'POST')).toHaveLength(2);
    expect(await c.headBlob('restart-chunked', desc.digest)).toBe(data.length);
  });

  it('fails a download cut mid-stream with a retryable NETWORK error, and a copy from a stream factory restarts', async () => {
    const c = client();
    const data = randomBytes(100_000);
    const desc = { mediaType: MediaType.OciLayer, digest: digestOf(data), size: data.length };
    await c.uploadBlob('download-src', desc, data);
    const cut: Fault = { method: 'GET', path: new RegExp(`blobs/${desc.digest}$`), action: { status: 200, body: data, cutAfter: 30_000 } };
    faults = [cut];
    const stream = await c.getBlob('download-src', desc);
    const err = await failure((async () => {
      for await (const chunk of stream) void chunk;
    })());
    expect(err.code).toBe('NETWORK');
    expect(err.message).toMatch(new RegExp(`^download of blob ${desc.digest} of download-src from ${proxyHost} failed: `));
    expect(isRetryableNetworkError(err)).toBe(true);

    faults = [{ ...cut }];
    let opened = 0;
    const outcome = await c.uploadBlob('download-dst', desc, () => {
      opened++;
      return c.getBlob('download-src', desc);
    });
    expect(outcome).toBe('uploaded');
    expect(opened).toBe(2);
    expect(await c.headBlob('download-dst', desc.digest)).toBe(data.length);
  });

  it('does not retry a one-shot stream, and reports the network failure', async () => {
    const c = client();
    const data = randomBytes(50_000);
    faults = [{ method: 'PUT', path: /blobs\/uploads\//, action: 'reset' }];
    const err = await failure(c.uploadBlob('oneshot', { mediaType: MediaType.OciLayer, digest: digestOf(data), size: data.length }, Readable.from([data])));
    expect(err.code).toBe('NETWORK');
    expect(err.message).toMatch(new RegExp(`^cannot reach registry ${proxyHost} \\(PUT http://${proxyHost}/v2/oneshot/blobs/uploads/`));
    expect(events.filter((e) => e.method === 'POST')).toHaveLength(1);
  });

  it('reports a failing source stream as itself, not as a network error', async () => {
    const c = client();
    const data = randomBytes(10_000);
    const broken = new Error('disk read failed');
    const source = new Readable({
      read() {
        this.destroy(broken);
      },
    });
    const err = await c.uploadBlob('broken-source', { mediaType: MediaType.OciLayer, digest: digestOf(data), size: data.length }, source).catch((e: unknown) => e);
    expect(err).toBe(broken);
  });

  it('fails at once with a hint when nothing listens', async () => {
    // A port that was free a moment ago: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const address = closed.address();
    await new Promise((resolve) => closed.close(resolve));
    const port = typeof address === 'object' && address ? address.port : 0;
    const c = new RegistryClient({ registry: `127.0.0.1:${port}`, env: { HOME: '/nonexistent' }, onRequest: (e) => events.push(e) });
    const err = await failure(c.ping());
    expect(err.code).toBe('NETWORK');
    expect(err.hint).toMatch(/is the registry running/);
    expect(events).toHaveLength(1);
  });
});
