import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendFileBody } from '../../registry/send-file.js';

// A blob body is sent from two reused buffers; each must be sent whole before it is read into again, and a
// client that goes away must not leave the file open.
describe('sendFileBody', () => {
  let dir: string;
  let path: string;
  let data: Buffer;
  let server: Server;
  let port: number;
  const outcomes: Array<Promise<void>> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-send-file-'));
    path = join(dir, 'blob');
    data = randomBytes(5 * 1024 * 1024 + 12345); // several buffers' worth, and a partial last read
    writeFileSync(path, data);
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const start = Number(url.searchParams.get('start') ?? 0);
      const length = Number(url.searchParams.get('length') ?? data.length - start);
      res.setHeader('Content-Length', String(length));
      const outcome = sendFileBody(res, path, start, length);
      outcomes.push(outcome);
      outcome.catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const fetchBody = async (query: string): Promise<Buffer> => Buffer.from(await (await fetch(`http://127.0.0.1:${port}/?${query}`)).arrayBuffer());

  it('sends the whole file byte for byte', async () => {
    expect((await fetchBody('')).equals(data)).toBe(true);
  });

  it('sends a range that starts and ends inside buffers', async () => {
    const start = 1_000_001;
    const length = 2 * 1024 * 1024 + 7;
    expect((await fetchBody(`start=${start}&length=${length}`)).equals(data.subarray(start, start + length))).toBe(true);
  });

  it('fails when the file is shorter than the length to send', async () => {
    const before = outcomes.length;
    await fetch(`http://127.0.0.1:${port}/?start=${data.length - 10}&length=20`).then((r) => r.arrayBuffer()).catch(() => undefined);
    await expect(outcomes[before]).rejects.toThrow(/ended 10 bytes short/);
  });

  it('gives up, closing the file, when the client goes away mid-body', async () => {
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const baseline = fds();
    const before = outcomes.length;
    await new Promise<void>((resolve) => {
      const req = get(`http://127.0.0.1:${port}/`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
    });
    await expect(outcomes[before]).rejects.toThrow(/closed the connection|ECONNRESET|EPIPE|destroyed/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fds()).toBeLessThanOrEqual(baseline);
  });
});
