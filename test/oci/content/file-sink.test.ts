import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSink } from '../../../oci/content/file-sink.js';
import type { Digest } from '../../../oci/digest.js';
import { isKilnError } from '../../../oci/errors.js';

const sha256 = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** Network-like chunks: uneven sizes that straddle the sink's 256 KiB buffers. */
function chunked(data: Buffer): Readable {
  const sizes = [1, 65536, 16384, 1 << 20, 300_000, 7];
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    parts.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(parts);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-file-sink-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('FileSink', () => {
  it('writes exactly the bytes it was given, with their digest and size', async () => {
    const data = randomBytes(5 * (1 << 20) + 12345);
    const sink = new FileSink(join(dir, 'blob'), { expected: sha256(data), expectedSize: data.length });
    await pipeline(chunked(data), sink);
    expect(readFileSync(join(dir, 'blob')).equals(data)).toBe(true);
    expect(sink.digest).toBe(sha256(data));
    expect(sink.size).toBe(data.length);
  });

  it('writes a blob larger than its background fdatasync interval (16 MiB) intact', async () => {
    const data = randomBytes(40 * (1 << 20) + 777);
    const sink = new FileSink(join(dir, 'big'), { expected: sha256(data), expectedSize: data.length });
    await pipeline(chunked(data), sink);
    expect(readFileSync(join(dir, 'big')).equals(data)).toBe(true);
    expect(sink.digest).toBe(sha256(data));
  });

  it('computes the digest when none is expected, also of an empty stream', async () => {
    const sink = new FileSink(join(dir, 'empty'));
    await pipeline(Readable.from([]), sink);
    expect(sink.digest).toBe(sha256(Buffer.alloc(0)));
    expect(readFileSync(join(dir, 'empty')).length).toBe(0);
  });

  it('fails with DIGEST_MISMATCH naming the subject when the bytes are not the expected ones', async () => {
    const data = randomBytes(3 << 20);
    const other = Buffer.from(data);
    other[12345] = other[12345]! ^ 1;
    const err = await pipeline(chunked(other), new FileSink(join(dir, 'bad'), { expected: sha256(data), subject: 'blob X' })).catch((e: unknown) => e);
    expect(isKilnError(err, 'DIGEST_MISMATCH')).toBe(true);
    expect((err as Error).message).toContain('blob X');
  });

  it('fails with SIZE_MISMATCH as soon as the data outgrows its declared size, and at the end when it falls short', async () => {
    const data = randomBytes(2 << 20);
    const over = await pipeline(chunked(data), new FileSink(join(dir, 'over'), { expectedSize: 1000 })).catch((e: unknown) => e);
    expect(isKilnError(over, 'SIZE_MISMATCH')).toBe(true);
    expect((over as Error).message).toContain('larger than its declared size 1000');
    const short = await pipeline(chunked(data), new FileSink(join(dir, 'short'), { expectedSize: data.length + 1 })).catch((e: unknown) => e);
    expect(isKilnError(short, 'SIZE_MISMATCH')).toBe(true);
    expect((short as Error).message).toContain(`is ${data.length} bytes, expected ${data.length + 1}`);
  });

  it('never overwrites an existing file', async () => {
    writeFileSync(join(dir, 'taken'), 'keep me');
    const err = await pipeline(Readable.from([Buffer.from('new')]), new FileSink(join(dir, 'taken'))).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('EEXIST');
    expect(readFileSync(join(dir, 'taken'), 'utf8')).toBe('keep me');
  });

  it('passes a failing source’s error on', async () => {
    async function* broken(): AsyncGenerator<Buffer> {
      yield randomBytes(3 << 20);
      throw new Error('connection lost');
    }
    const err = await pipeline(Readable.from(broken()), new FileSink(join(dir, 'cut'))).catch((e: unknown) => e);
    expect((err as Error).message).toBe('connection lost');
  });
});
