import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestSourceError, sendHttp } from '../../../oci/client/http.js';
import { Transport } from '../../../oci/client/transport.js';
import { isKilnError } from '../../../oci/errors.js';

// The registry client's HTTP layer against real node:http servers: redirects, credentials across origins,
// keep-alive reuse, strict Content-Length, source failures and idle timeouts.
type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

interface TestServer {
  server: Server;
  base: URL;
  seen: Array<{ method: string; url: string; authorization?: string; body: Buffer; socket: Socket }>;
}

async function serve(handler: Handler): Promise<TestServer> {
  const seen: TestServer['seen'] = [];
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body, socket: req.socket });
      handler(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { server, base: new URL(`http://127.0.0.1:${port}`), seen };
}

async function text(body: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

let main: TestServer;
let other: TestServer;

beforeAll(async () => {
  other = await serve((req, res) => res.end(`other ${req.method} ${req.url}`));
  main = await serve((req, res, body) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/same') return void res.writeHead(307, { location: '/final' }).end();
    if (url.pathname === '/away') return void res.writeHead(302, { location: new URL('/elsewhere', other.base).href }).end();
    if (url.pathname === '/see-other') return void res.writeHead(303, { location: '/final' }).end();
    if (url.pathname === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (url.pathname === '/created') return void res.writeHead(201, { 'content-length': '0' }).end();
    if (url.pathname === '/slow') return; // never answers
    res.end(`main ${req.method} ${url.pathname} ${body.length}`);
  });
});

afterAll(async () => {
  main.server.closeAllConnections();
  other.server.closeAllConnections();
  main.server.close();
  other.server.close();
});

describe('sendHttp', () => {
  it('follows a same-origin redirect keeping the credentials', async () => {
    const res = await sendHttp(new URL('/same', main.base), { method: 'GET', headers: { authorization: 'Bearer secret' } });
    expect(res.status).toBe(200);
    expect(await text(res.body)).toBe('main GET /final 0');
    expect(main.seen.at(-1)?.authorization).toBe('Bearer secret');
    expect(res.url).toBe(new URL('/final', main.base).href);
  });

  it('drops the credentials when a redirect leaves the origin', async () => {
    const res = await sendHttp(new URL('/away', main.base), { method: 'GET', headers: { authorization: 'Bearer secret' } });
    expect(await text(res.body)).toBe('other GET /elsewhere');
    expect(other.seen.at(-1)?.authorization).toBeUndefined();
  });

  it('turns a 303 after a POST into a GET without the body', async () => {
    const res = await sendHttp(new URL('/see-other', main.base), { method: 'POST', headers: {}, body: Buffer.from('payload') });
    expect(await text(res.body)).toBe('main GET /final 0');
  });

  it('gives up following after ten redirects and returns the last answer', async () => {
    const before = main.seen.length;
    const res = await sendHttp(new URL('/loop', main.base), { method: 'GET', headers: {} });
    expect(res.status).toBe(302);
    expect(main.seen.length - before).toBe(11);
  });

  it('does not replay a stream body on a redirect', async () => {
    const res = await sendHttp(new URL('/same', main.base), { method: 'PUT', headers: { 'content-length': '3' }, body: Readable.from([Buffer.from('abc')]) });
    expect(res.status).toBe(307);
  });

  it('sends a stream body with backpressure and reuses the connection afterwards', async () => {
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(64 * 1024, 7));
    const first = await sendHttp(new URL('/upload', main.base), { method: 'PUT', headers: { 'content-length': String(64 * 64 * 1024) }, body: Readable.from(chunks) });
    expect(await text(first.body)).toBe(`main PUT /upload ${64 * 64 * 1024}`);
    const second = await sendHttp(new URL('/created', main.base), { method: 'HEAD', headers: {} });
    expect(second.status).toBe(201);
    expect(main.seen.at(-1)?.socket).toBe(main.seen.at(-2)?.socket);
  });

  it('returns the socket of a bodiless answer to the pool without anyone reading it', async () => {
    await sendHttp(new URL('/created', main.base), { method: 'PUT', headers: {}, body: Buffer.from('x') });
    const res = await sendHttp(new URL('/created', main.base), { method: 'PUT', headers: {}, body: Buffer.from('y') });
    expect(res.status).toBe(201);
    // Neither body was read by the caller, yet both requests went over the same connection.
    expect(main.seen.at(-1)?.socket).toBe(main.seen.at(-2)?.socket);
  });

  it('fails a stream body that is not the declared length', async () => {
    const err = await sendHttp(new URL('/upload', main.base), { method: 'PUT', headers: { 'content-length': '10' }, body: Readable.from([Buffer.from('0123456789abc')]) }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_HTTP_CONTENT_LENGTH_MISMATCH');
  });

  it('reports a failing body source as the source’s error', async () => {
    const boom = new Error('disk read failed');
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.from('start');
      throw boom;
    }
    const err = await sendHttp(new URL('/upload', main.base), { method: 'PUT', headers: {}, body: Readable.from(broken()) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestSourceError);
    expect((err as Error).cause).toBe(boom);
  });

  it('sends a request again on a fresh connection when the server closed the idle one', async () => {
    const first = await sendHttp(new URL('/a', main.base), { method: 'GET', headers: {} });
    await text(first.body);
    // The server drops every idle keep-alive connection, as one whose keep-alive timeout passed does.
    main.server.closeIdleConnections();
    const res = await sendHttp(new URL('/b', main.base), { method: 'GET', headers: {} });
    expect(await text(res.body)).toBe('main GET /b 0');
  });

  it('fails with ETIMEDOUT when the server goes quiet', async () => {
    const err = await sendHttp(new URL('/slow', main.base), { method: 'GET', headers: {}, idleTimeoutMs: 200 }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ETIMEDOUT');
  });

  it('rejects with the socket error when nothing listens', async () => {
    const err = await sendHttp(new URL('http://127.0.0.1:1/v2/'), { method: 'GET', headers: {} }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('says in one line that a plain-HTTP registry was spoken to in TLS, with the --insecure hint', async () => {
    // An https URL (as for any registry that is not loopback) to a server that speaks plain HTTP.
    const plain = createServer((_req, res) => res.end('plain'));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const { port } = plain.address() as AddressInfo;
      const transport = new Transport({ registry: `registry.invalid:${port}`, maxRetries: 0 });
      const err = await transport.request({ method: 'GET', url: `https://127.0.0.1:${port}/v2/`, scopes: [] }).catch((e: unknown) => e);
      expect(isKilnError(err, 'NETWORK')).toBe(true);
      expect((err as Error).message).toContain('TLS handshake failed: the server did not answer in TLS');
      expect((err as Error).message).not.toContain('openssl');
      expect((err as { hint?: string }).hint).toBe('if the registry serves plain HTTP, use --insecure');
    } finally {
      plain.close();
    }
  });
});
