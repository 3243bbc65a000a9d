import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../oci/digest.js';
import type { AccessLogEntry } from '../../../registry/observability/access-log.js';
import { type ServeProcess, startServe } from '../../support/serve.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-lifecycle-'));
});
afterAll(() => rm(work, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the error of a request on a fresh connection (none when it is answered). */
function freshConnection(url: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    get(`${url}/v2/`, { agent: false }, (res) => {
      res.resume();
      resolve(undefined);
    }).on('error', (err: NodeJS.ErrnoException) => resolve(err));
  });
}

describe('kiln serve lifecycle', () => {
  it('on SIGTERM stops accepting, completes an upload in flight, then exits 0; the blob is there after a restart', async () => {
    const data = join(work, 'shutdown');
    const server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
    const chunks = Array.from({ length: 20 }, () => randomBytes(64 * 1024));
    const blob = Buffer.concat(chunks);
    const digest = digestOf(blob);
    const exited = new Promise<number | null>((resolve) => server.child.on('exit', (code) => resolve(code)));

    let status = 0;
    const answered = new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/v2/slow/app/blobs/uploads/?digest=${digest}`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) },
      });
      req.on('response', (res) => {
        status = res.statusCode ?? 0;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      void (async () => {
        for (const [i, chunk] of chunks.entries()) {
          req.write(chunk);
          if (i === 2) {
            // The upload is under way: ask the server to stop.
            server.child.kill('SIGTERM');
            await sleep(100);
            const refused = await freshConnection(server.url);
            expect(refused?.code).toBe('ECONNREFUSED');
          }
          await sleep(40);
        }
        req.end();
      })().catch(reject);
    });
    await answered;
    expect(status).toBe(201);
    expect(await exited).toBe(0);
    expect(server.stderr()).toContain('"msg":"stopped"');
    const logged = server.stdout().trim().split('\n').map((l) => JSON.parse(l) as AccessLogEntry);
    expect(logged.find((e) => e.route === 'uploads')).toMatchObject({ method: 'POST', status: 201, bytesIn: blob.length, repository: 'slow/app' });

    const again = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
    try {
      const res = await fetch(`${again.url}/v2/slow/app/blobs/${digest}`);
      expect(res.status).toBe(200);
      expect(digestOf(Buffer.from(await res.arrayBuffer()))).toBe(digest);
    } finally {
      expect(await again.stop()).toBe(0);
    }
  });

  it('writes access log lines to stdout, health and metrics over HTTP, and no lines with log.accesslog.disabled', async () => {
    const server: ServeProcess = await startServe(['--addr', '127.0.0.1:0', '--data', join(work, 'logged')]);
    try {
      expect((await fetch(`${server.url}/v2/`)).status).toBe(200);
      expect((await fetch(`${server.url}/v2/nope/manifests/latest`)).status).toBe(404);
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(metrics).toMatch(/^kiln_http_requests_total\{route="manifests",method="GET",status="404"\} 1$/m);
      await sleep(100);
      const entries = server.stdout().trim().split('\n').map((l) => JSON.parse(l) as AccessLogEntry);
      expect(entries.map((e) => [e.route, e.status])).toEqual([
        ['base', 200],
        ['manifests', 404],
      ]);
    } finally {
      expect(await server.stop()).toBe(0);
    }

    const config = join(work, 'quiet.yml');
    await writeFile(config, 'log:\n  accesslog:\n    disabled: true\n');
    const quiet = await startServe(['--addr', '127.0.0.1:0', '--data', join(work, 'quiet'), '--config', config]);
    try {
      expect((await fetch(`${quiet.url}/v2/`)).status).toBe(200);
      expect((await fetch(`${quiet.url}/healthz`)).status).toBe(200);
      await sleep(100);
      expect(quiet.stdout()).toBe('');
    } finally {
      expect(await quiet.stop()).toBe(0);
    }
  });
});
