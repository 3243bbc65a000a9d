import { randomBytes, randomUUID } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { errorCode, pushBlob, rawRequest, startTestRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(() => reg.stop({ removeDir: true }));

const octets = { 'content-type': 'application/octet-stream' };

async function open(name = 'up/app'): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(res.status).toBe(202);
  expect(res.headers.get('range')).toBe('0-0');
  expect(res.headers.get('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/);
  const location = res.headers.get('location') ?? '';
  expect(location).toMatch(new RegExp(`^/v2/${name}/blobs/uploads/[0-9a-f-]{36}$`));
  return location;
}

function patch(location: string, body: Buffer, range?: string): Promise<Response> {
  return fetch(`${reg.url}${location}`, { method: 'PATCH', headers: { ...octets, ...(range ? { 'content-range': range } : {}) }, body: new Uint8Array(body) });
}

async function uploadsLeft(): Promise<string[]> {
  return readdir(join(reg.dir, 'uploads')).catch(() => []);
}

describe('monolithic uploads', () => {
  it('POST then PUT ?digest= stores the blob (201 + Location + Docker-Content-Digest)', async () => {
    const data = randomBytes(1000);
    const location = await open();
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: octets, body: data });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/up/app/blobs/${digestOf(data)}`);
    expect(put.headers.get('docker-content-digest')).toBe(digestOf(data));
    expect(Buffer.from(await (await fetch(`${reg.url}/v2/up/app/blobs/${digestOf(data)}`)).arrayBuffer())).toEqual(data);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
  });

  it('single POST ?digest= answers 201; a mismatch is 400 DIGEST_INVALID and stores nothing', async () => {
    const data = Buffer.from('single post');
    const ok = await fetch(`${reg.url}/v2/up/single/blobs/uploads/?digest=${digestOf(data)}`, { method: 'POST', headers: octets, body: data });
    expect(ok.status).toBe(201);
    const wrong = digestOf('something else');
    const bad = await fetch(`${reg.url}/v2/up/single/blobs/uploads/?digest=${wrong}`, { method: 'POST', headers: octets, body: data });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('DIGEST_INVALID');
    expect(await reg.blobs.stat(wrong)).toBeUndefined();
    expect(await reg.blobs.stat(digestOf(data))).toBeDefined();
    expect((await fetch(`${reg.url}/v2/up/single/blobs/${wrong}`)).status).toBe(404);
    expect(await uploadsLeft()).toEqual([]);
  });

  it('a PUT whose content does not match ?digest= is 400 DIGEST_INVALID: no blob, no session, no file', async () => {
    const location = await open();
    const claimed = digestOf('claimed');
    const put = await fetch(`${reg.url}${location}?digest=${claimed}`, { method: 'PUT', headers: octets, body: 'actual' });
    expect(put.status).toBe(400);
    expect(await errorCode(put)).toBe('DIGEST_INVALID');
    expect(await reg.blobs.stat(claimed)).toBeUndefined();
    expect(await reg.blobs.stat(digestOf('actual'))).toBeUndefined();
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
    expect(await uploadsLeft()).toEqual([]);
  });

  it('a PUT without a digest, or with a malformed one, is 400 DIGEST_INVALID and the session stays', async () => {
    const location = await open();
    for (const query of ['', '?digest=sha256:nothex', '?digest=crc32:1234']) {
      const put = await fetch(`${reg.url}${location}${query}`, { method: 'PUT', headers: octets, body: 'x' });
      expect(put.status, query).toBe(400);
      expect(await errorCode(put)).toBe('DIGEST_INVALID');
    }
    expect((await fetch(`${reg.url}${location}`)).status).toBe(204);
  });

  it('accepts sha512 digests, monolithic and chunked', async () => {
    const data = randomBytes(3000);
    const d512 = digestOf(data, 'sha512');
    const post = await fetch(`${reg.url}/v2/up/sha512/blobs/uploads/?digest=${d512}`, { method: 'POST', headers: octets, body: data });
    expect(post.status).toBe(201);
    expect(post.headers.get('docker-content-digest')).toBe(d512);
    const get = await fetch(`${reg.url}/v2/up/sha512/blobs/${d512}`);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(data);
    const other = randomBytes(100);
    const location = await open('up/sha512');
    expect((await patch(location, other.subarray(0, 60), '0-59')).status).toBe(202);
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(other, 'sha512')}`, { method: 'PUT', headers: { ...octets, 'content-range': '60-99' }, body: other.subarray(60) });
    expect(put.status).toBe(201);
  });
});

describe('chunked uploads', () => {
  const data = randomBytes(30);

  it('takes in-order chunks, refuses out-of-order and repeated ones with 416, reports status, completes', async () => {
    const location = await open();
    const first = await patch(location, data.subarray(0, 10), '0-9');
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-9');
    expect(first.headers.get('location')).toBe(location);
    const repeated = await patch(location, data.subarray(0, 10), '0-9');
    expect(repeated.status).toBe(416);
    expect(repeated.headers.get('range')).toBe('0-9');
    expect(await errorCode(repeated)).toBe('RANGE_INVALID');
    const skipped = await patch(location, data.subarray(20, 30), '20-29');
    expect(skipped.status).toBe(416);
    const status = await fetch(`${reg.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-9');
    expect(status.headers.get('location')).toBe(location);
    expect((await patch(location, data.subarray(10, 20), '10-19')).headers.get('range')).toBe('0-19');
    expect((await patch(location, data.subarray(20, 30), '20-29')).status).toBe(202);
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: { 'content-length': '0' } });
    expect(put.status).toBe(201);
    expect(Buffer.from(await (await fetch(`${reg.url}/v2/up/app/blobs/${digestOf(data)}`)).arrayBuffer())).toEqual(data);
  });

  it('streams PATCHes without Content-Range, appending, and takes the last chunk in the PUT', async () => {
    const location = await open();
    expect((await patch(location, data.subarray(0, 7))).headers.get('range')).toBe('0-6');
    expect((await patch(location, data.subarray(7, 25))).headers.get('range')).toBe('0-24');
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: octets, body: data.subarray(25) });
    expect(put.status).toBe(201);
  });

  it('refuses malformed or inconsistent Content-Range with 416 and leaves the session as it was', async () => {
    const location = await open();
    await patch(location, data.subarray(0, 5), '0-4');
    for (const range of ['abc', '9-5', '5-', 'bytes=5-x', '5-100']) {
      const res = await patch(location, data.subarray(5, 10), range);
      expect(res.status, range).toBe(416);
      expect(await errorCode(res)).toBe('RANGE_INVALID');
    }
    expect((await fetch(`${reg.url}${location}`)).headers.get('range')).toBe('0-4');
  });

  it('answers a refused large chunk with its 416 (the body is drained, not reset) and keeps the connection usable', async () => {
    const location = await open();
    const big = randomBytes(8 * 1024 * 1024);
    const res = await patch(location, big, `100-${big.length + 99}`);
    expect(res.status).toBe(416);
    expect(res.headers.get('range')).toBe('0-0');
    expect((await patch(location, big.subarray(0, 10), '0-9')).status).toBe(202);
  });

  it('takes multi-MiB chunks across the write buffers, refuses one longer than its Content-Range, and resumes at the offset', async () => {
    const big = randomBytes(3 * 1024 * 1024 + 12345);
    const cut = 1024 * 1024 + 7;
    const location = await open();
    expect((await patch(location, big.subarray(0, cut), `0-${cut - 1}`)).status).toBe(202);
    // Streamed (no Content-Length), so the refusal comes from counting the body once 1 MiB of it is written.
    const over = await fetch(`${reg.url}${location}`, {
      method: 'PATCH',
      headers: { ...octets, 'content-range': `${cut}-${cut + 1024 * 1024 - 1}` },
      body: Readable.toWeb(Readable.from([big.subarray(cut, cut + 2 * 1024 * 1024)])) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(over.status).toBe(416);
    expect(over.headers.get('range')).toBe(`0-${cut - 1}`);
    expect((await patch(location, big.subarray(cut), `${cut}-${big.length - 1}`)).headers.get('range')).toBe(`0-${big.length - 1}`);
    expect((await fetch(`${reg.url}${location}?digest=${digestOf(big)}`, { method: 'PUT' })).status).toBe(201);
    // equals(), not toEqual: a deep compare of 3 MiB takes seconds.
    expect(Buffer.from(await (await fetch(`${reg.url}/v2/up/app/blobs/${digestOf(big)}`)).arrayBuffer()).equals(big)).toBe(true);
  });

  it('serialises concurrent PATCHes of one session: one wins, the other gets 416', async () => {
    const location = await open();
    const results = await Promise.all([patch(location, data.subarray(0, 10), '0-9'), patch(location, data.subarray(0, 10), '0-9')]);
    expect(results.map((r) => r.status).sort()).toEqual([202, 416]);
  });

  it('answers unknown, foreign or malformed upload ids with 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const location = await open('up/owner');
    const foreign = location.replace('/up/owner/', '/up/thief/');
    for (const path of [`/v2/up/app/blobs/uploads/${randomUUID()}`, foreign, '/v2/up/app/blobs/uploads/not-a-uuid', '/v2/up/app/blobs/uploads/..%2F..%2Fmetadata.sqlite']) {
      for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
        const res = await rawRequest(reg.url, method, method === 'PUT' ? `${path}?digest=${digestOf('x')}` : path);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(JSON.parse(res.body).errors[0].code).toBe('BLOB_UPLOAD_UNKNOWN');
        expect(res.body).not.toContain(reg.dir);
      }
    }
  });

  it('DELETE cancels a session (204) and removes its bytes', async () => {
    const location = await open('up/cancel');
    await patch(location, data, '0-29');
    const del = await fetch(`${reg.url}${location}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await fetch(`${reg.url}${location}`)).status).toBe(404);
    expect(await uploadsLeft()).not.toContain(location.split('/').pop());
  });
});

describe('cross-repository mount', () => {
  it('links a blob the source repository has (201) and opens a normal session otherwise (202)', async () => {
    const d = await pushBlob(reg.url, 'mount/source', 'mountable');
    const mounted = await fetch(`${reg.url}/v2/mount/target/blobs/uploads/?mount=${d}&from=mount/source`, { method: 'POST' });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/mount/target/blobs/${d}`);
    expect(mounted.headers.get('docker-content-digest')).toBe(d);
    expect(await (await fetch(`${reg.url}/v2/mount/target/blobs/${d}`)).text()).toBe('mountable');
    const unknown = await fetch(`${reg.url}/v2/mount/other/blobs/uploads/?mount=${digestOf('absent')}&from=mount/source`, { method: 'POST' });
    expect(unknown.status).toBe(202);
    expect(unknown.headers.get('location')).toMatch(/^\/v2\/mount\/other\/blobs\/uploads\//);
    const noFrom = await fetch(`${reg.url}/v2/mount/other/blobs/uploads/?mount=${d}`, { method: 'POST' });
    expect(noFrom.status).toBe(202);
    expect((await fetch(`${reg.url}/v2/mount/other/blobs/${d}`)).status).toBe(404);
  });

  it('does not mount from a repository the requester may not pull', async () => {
    const denying = await startTestRegistry({
      deps: {
        authorize: async (_req, access) => {
          if (access.repository === 'secret/src' && access.actions.includes('pull')) throw new KilnError('DENIED', 'no');
        },
      },
    });
    try {
      await denying.metadata.linkBlob('secret/src', await pushBlob(denying.url, 'open/repo', 'secret'), 6);
      const res = await fetch(`${denying.url}/v2/open/dst/blobs/uploads/?mount=${digestOf('secret')}&from=secret/src`, { method: 'POST' });
      expect(res.status).toBe(202);
      const denied = await fetch(`${denying.url}/v2/secret/src/blobs/${digestOf('secret')}`);
      expect(denied.status).toBe(403);
      expect(await errorCode(denied)).toBe('DENIED');
    } finally {
      await denying.stop({ removeDir: true });
    }
  });
});

describe('interrupted uploads', () => {
  /** Sends `sent` bytes of a PATCH announcing `announced`, then cuts the connection. */
  function abortedPatch(location: string, sent: Buffer, announced: number, range?: string): Promise<void> {
    return new Promise((resolve) => {
      const headers: Record<string, string> = { ...octets, 'content-length': String(announced), ...(range ? { 'content-range': range } : {}) };
      const req = request(`${reg.url}${location}`, { method: 'PATCH', headers });
      req.on('error', () => resolve());
      req.write(sent, () => setTimeout(() => {
        req.destroy();
        resolve();
      }, 50));
    });
  }

  it('a client disconnecting mid-PATCH leaves the session at its last good offset, resumable; others are served', async () => {
    const data = randomBytes(4000);
    const location = await open('up/resume');
    expect((await patch(location, data.subarray(0, 1000), '0-999')).status).toBe(202);
    await abortedPatch(location, data.subarray(1000, 2500), 3000, '1000-3999');
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
    const status = await fetch(`${reg.url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-999');
    await abortedPatch(location, data.subarray(1000, 1100), 3000);
    expect((await fetch(`${reg.url}${location}`)).headers.get('range')).toBe('0-999');
    expect((await patch(location, data.subarray(1000), '1000-3999')).status).toBe(202);
    const put = await fetch(`${reg.url}${location}?digest=${digestOf(data)}`, { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(Buffer.from(await (await fetch(`${reg.url}/v2/up/resume/blobs/${digestOf(data)}`)).arrayBuffer())).toEqual(data);
  });

  it('a session survives a restart and completes by re-hashing the file', async () => {
    const data = randomBytes(5000);
    const first = await startTestRegistry();
    const location = (await fetch(`${first.url}/v2/up/restart/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? '';
    await fetch(`${first.url}${location}`, { method: 'PATCH', headers: { ...octets, 'content-range': '0-2999' }, body: data.subarray(0, 3000) });
    await first.stop();
    const second = await startTestRegistry({ dir: first.dir });
    try {
      expect((await fetch(`${second.url}${location}`)).headers.get('range')).toBe('0-2999');
      const put = await fetch(`${second.url}${location}?digest=${digestOf(data)}`, { method: 'PUT', headers: { ...octets, 'content-range': '3000-4999' }, body: data.subarray(3000) });
      expect(put.status).toBe(201);
    } finally {
      await second.stop({ removeDir: true });
    }
  });

  it('cleanup removes stale sessions and orphan files, leaving live ones', async () => {
    const fresh = await startTestRegistry();
    try {
      const stale = (await fetch(`${fresh.url}/v2/up/stale/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? '';
      await writeFile(join(fresh.dir, 'uploads', 'orphan'), 'left by a crash');
      expect(await fresh.app.uploads.cleanup({ maxAgeMs: 60_000, orphans: true })).toEqual({ sessions: 0, files: 1 });
      expect((await fetch(`${fresh.url}${stale}`)).status).toBe(204);
      expect(await fresh.app.uploads.cleanup({ maxAgeMs: 0, now: Date.now() + 1000 })).toEqual({ sessions: 1, files: 0 });
      expect((await fetch(`${fresh.url}${stale}`)).status).toBe(404);
      expect(await readdir(join(fresh.dir, 'uploads'))).toEqual([]);
    } finally {
      await fresh.stop({ removeDir: true });
    }
  });
});
