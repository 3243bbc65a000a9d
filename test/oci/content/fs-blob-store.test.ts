import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../../oci/content/fs-blob-store.js';
import { digestOf, type Digest } from '../../../oci/digest.js';
import { readStreamLimited } from '../../../oci/stream-util.js';

let dir: string;
let store: FsBlobStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-blobs-'));
  store = new FsBlobStore({ root: join(dir, 'blobs') });
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const read = async (d: Digest, range?: { start: number; end?: number }) => (await readStreamLimited(await store.get(d, range), 1 << 20)).toString();

describe('FsBlobStore', () => {
  it('puts, stats, gets (whole and ranged), lists and deletes', async () => {
    const data = Buffer.from('hello blob store');
    const info = await store.put(Readable.from([data]), { expectedDigest: digestOf(data) });
    expect(info).toEqual({ digest: digestOf(data), size: data.length });
    expect(await store.stat(info.digest)).toEqual(info);
    expect(await read(info.digest)).toBe('hello blob store');
    expect(await read(info.digest, { start: 6, end: 9 })).toBe('blob');
    expect(await read(info.digest, { start: 6 })).toBe('blob store');
    const listed: Digest[] = [];
    for await (const d of store.list()) listed.push(d);
    expect(listed).toEqual([info.digest]);
    expect(await store.delete(info.digest)).toBe(true);
    expect(await store.delete(info.digest)).toBe(false);
    expect(await store.stat(info.digest)).toBeUndefined();
  });

  it('computes the digest when none is expected, and stores under it', async () => {
    const info = await store.put(Buffer.from('x'));
    expect(info.digest).toBe(digestOf('x'));
    expect(await read(info.digest)).toBe('x');
  });

  it('rejects a mismatching blob and leaves nothing visible or temporary', async () => {
    const want = digestOf('expected');
    await expect(store.put(Readable.from([Buffer.from('tampered')]), { expectedDigest: want })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(await store.stat(want)).toBeUndefined();
    expect(await store.stat(digestOf('tampered'))).toBeUndefined();
    expect(await readdir(store.tmpDir)).toEqual([]);
  });

  it('rejects a truncated blob (size mismatch)', async () => {
    const data = Buffer.from('full content');
    await expect(store.put(Readable.from([data.subarray(0, 4)]), { expectedDigest: digestOf(data), expectedSize: data.length })).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    expect(await store.stat(digestOf(data))).toBeUndefined();
  });

  it('errors clearly on unknown blobs and bad ranges', async () => {
    await expect(store.get(digestOf('nope'))).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
    const info = await store.put(Buffer.from('abc'));
    await expect(store.get(info.digest, { start: 2, end: 5 })).rejects.toMatchObject({ code: 'RANGE_INVALID' });
  });

  it('refuses digests that could escape the root', () => {
    expect(() => store.path('sha256:../../etc/passwd' as Digest)).toThrow(/invalid digest/);
  });

  it('skips stray files when listing', async () => {
    const info = await store.put(Buffer.from('a'));
    await store.put(Buffer.from('b'));
    const { writeFile, mkdir } = await import('node:fs/promises');
    await mkdir(join(store.root, 'sha256'), { recursive: true });
    await writeFile(join(store.root, 'sha256', 'not-a-digest'), 'x');
    const listed: Digest[] = [];
    for await (const d of store.list()) listed.push(d);
    expect(listed).toHaveLength(2);
    expect(listed).toContain(info.digest);
  });
});
