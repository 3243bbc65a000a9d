import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { digestOf, isDigest, parseDigest, VerifyingStream, verifyBytes } from '../../oci/digest.js';

const hex64 = 'a'.repeat(64);

describe('parseDigest', () => {
  it.each([`sha256:${hex64}`, `sha512:${'0'.repeat(128)}`])('accepts %s', (d) => {
    expect(parseDigest(d)).toBe(d);
  });

  it.each([
    ['sha256:abc', /64 lowercase hex/],
    [`sha256:${'A'.repeat(64)}`, /lowercase hex/],
    [`md5:${'a'.repeat(32)}`, /unsupported digest algorithm "md5"/],
    [`sha512:${hex64}`, /128 lowercase hex/],
    ['sha256', /expected algorithm:hex/],
    ['', /expected algorithm:hex/],
    [`sha256:../../${hex64}`, /expected algorithm:hex/],
    [`SHA256:${hex64}`, /expected algorithm:hex/],
  ])('rejects %s', (d, msg) => {
    expect(() => parseDigest(d)).toThrow(msg);
    expect(isDigest(d)).toBe(false);
  });
});

describe('digestOf / verifyBytes', () => {
  it('hashes bytes with the named algorithm', () => {
    expect(digestOf('hello')).toBe(`sha256:${createHash('sha256').update('hello').digest('hex')}`);
    expect(digestOf('hello', 'sha512')).toMatch(/^sha512:[0-9a-f]{128}$/);
  });

  it('verifyBytes throws DIGEST_MISMATCH naming both digests', () => {
    const d = digestOf('a');
    expect(() => verifyBytes(Buffer.from('a'), d)).not.toThrow();
    expect(() => verifyBytes(Buffer.from('b'), d)).toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH' }));
  });
});

async function drain(source: Readable, verifier: VerifyingStream): Promise<Buffer[]> {
  const got: Buffer[] = [];
  await pipeline(source, verifier, new Writable({ write(c, _e, cb) { got.push(c); cb(); } }));
  return got;
}

describe('VerifyingStream', () => {
  const data = Buffer.from('some layer bytes');

  it('passes data through and reports digest and size', async () => {
    const v = new VerifyingStream({ expected: digestOf(data), expectedSize: data.length });
    const got = await drain(Readable.from([data.subarray(0, 4), data.subarray(4)]), v);
    expect(Buffer.concat(got)).toEqual(data);
    expect(v.digest).toBe(digestOf(data));
    expect(v.size).toBe(data.length);
  });

  it('fails at the end on a digest mismatch', async () => {
    const v = new VerifyingStream({ expected: digestOf('other'), subject: 'blob X' });
    await expect(drain(Readable.from([data]), v)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH', message: expect.stringContaining('blob X') });
  });

  it('fails on truncation and as soon as data exceeds the declared size', async () => {
    await expect(drain(Readable.from([data]), new VerifyingStream({ expectedSize: data.length + 1 }))).rejects.toMatchObject({ code: 'SIZE_MISMATCH', message: expect.stringMatching(/truncated/) });
    await expect(drain(Readable.from([data]), new VerifyingStream({ expectedSize: 3 }))).rejects.toMatchObject({ code: 'SIZE_MISMATCH', message: expect.stringMatching(/larger/) });
  });

  it('verifies sha512 digests', async () => {
    const v = new VerifyingStream({ expected: digestOf(data, 'sha512') });
    await drain(Readable.from([data]), v);
    expect(v.digest).toBe(digestOf(data, 'sha512'));
  });
});
