import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { errorCode, pushBlob, rawRequest, startTestRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(() => reg.stop({ removeDir: true }));

describe('GET /v2/', () => {
  it('answers 200 {} with the API version header', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await res.json()).toEqual({});
    const head = await fetch(`${reg.url}/v2/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('answers unknown endpoints 404 and unknown methods 405, with spec error bodies', async () => {
    const res = await fetch(`${reg.url}/v2/lib/a/nothing/here`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('UNSUPPORTED');
    const post = await fetch(`${reg.url}/v2/lib/a/tags/list`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET');
    expect(await errorCode(post)).toBe('UNSUPPORTED');
  });
});

describe('blobs', () => {
  const data = Buffer.from('0123456789abcdefghij');
  const digest = digestOf(data);

  beforeAll(async () => {
    await pushBlob(reg.url, 'lib/blobs', data);
  });

  it('HEAD gives size and digest without a body; GET the bytes', async () => {
    const head = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    const get = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await get.arrayBuffer())).toEqual(data);
  });

  it('serves Range requests with 206 and Content-Range (RFC 9110)', async () => {
    const res = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`, { headers: { range: 'bytes=2-5' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes 2-5/${data.length}`);
    expect(await res.text()).toBe('2345');
    const open = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`, { headers: { range: 'bytes=15-' } });
    expect(await open.text()).toBe('fghij');
    const suffix = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`, { headers: { range: 'bytes=-3' } });
    expect(await suffix.text()).toBe('hij');
    const beyond = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digest}`, { headers: { range: 'bytes=100-200' } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${data.length}`);
    expect(await errorCode(beyond)).toBe('RANGE_INVALID');
  });

  it('is per repository: another repository does not serve it', async () => {
    const res = await fetch(`${reg.url}/v2/lib/other/blobs/${digest}`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('BLOB_UNKNOWN');
    const head = await fetch(`${reg.url}/v2/lib/other/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(await head.text()).toBe('');
  });

  it('answers 404 BLOB_UNKNOWN for unknown blobs and 400 DIGEST_INVALID for malformed digests', async () => {
    const unknown = await fetch(`${reg.url}/v2/lib/blobs/blobs/${digestOf('nope')}`);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe('BLOB_UNKNOWN');
    for (const bad of ['sha256:abc', 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:' + 'A'.repeat(64), '..', '%2e%2e', 'sha256:..%2f..%2fetc']) {
      const res = await rawRequest(reg.url, 'GET', `/v2/lib/blobs/blobs/${bad}`);
      expect(res.status, bad).toBe(400);
      expect(JSON.parse(res.body).errors[0].code).toBe('DIGEST_INVALID');
      expect(res.body).not.toContain(reg.dir);
    }
  });

  it('DELETE unlinks with 202, then 404; the bytes stay for other repositories', async () => {
    const shared = Buffer.from('shared between repositories');
    const d = await pushBlob(reg.url, 'lib/del-a', shared);
    await pushBlob(reg.url, 'lib/del-b', shared);
    const del = await fetch(`${reg.url}/v2/lib/del-a/blobs/${d}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect((await fetch(`${reg.url}/v2/lib/del-a/blobs/${d}`)).status).toBe(404);
    const again = await fetch(`${reg.url}/v2/lib/del-a/blobs/${d}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    expect(await errorCode(again)).toBe('BLOB_UNKNOWN');
    expect(await (await fetch(`${reg.url}/v2/lib/del-b/blobs/${d}`)).text()).toBe(shared.toString());
  });

  it('serves an empty blob', async () => {
    const d = await pushBlob(reg.url, 'lib/empty', '');
    const res = await fetch(`${reg.url}/v2/lib/empty/blobs/${d}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('0');
    expect(await res.text()).toBe('');
  });
});

describe('repository names', () => {
  it('accepts the spec grammar, including components named like API areas', async () => {
    for (const name of ['a', 'a/b/c', 'my-app/x_y/z__w/v.1', 'team/blobs/manifests/tags', 'a--b']) {
      const d = await pushBlob(reg.url, name, `content of ${name}`);
      const res = await fetch(`${reg.url}/v2/${name}/blobs/${d}`);
      expect(res.status, name).toBe(200);
    }
  });

  it('refuses bad names with 400 NAME_INVALID, never a 500 or a path', async () => {
    const long = Array.from({ length: 30 }, () => 'abcdefghi').join('/');
    const bad = ['UPPER/case', '../etc', 'a/../b', 'a/./b', '-a', 'a-', 'a//b', 'a_-b', '%2e%2e/x', 'a%2Fb', long];
    for (const name of bad) {
      for (const path of [`/v2/${name}/tags/list`, `/v2/${name}/blobs/${digestOf('x')}`, `/v2/${name}/manifests/latest`]) {
        const { status, body } = await rawRequest(reg.url, 'GET', path);
        expect(status, path).toBe(400);
        expect(JSON.parse(body).errors[0].code, path).toBe('NAME_INVALID');
        expect(body).not.toContain(reg.dir);
      }
    }
    const post = await fetch(`${reg.url}/v2/Bad/blobs/uploads/`, { method: 'POST' });
    expect(post.status).toBe(400);
  });
});
