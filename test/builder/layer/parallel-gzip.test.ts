import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ParallelGzip } from '../../../builder/layer/parallel-gzip.js';
import { digestOf } from '../../../oci/digest.js';

async function compress(pieces: Buffer[], inFlight: number): Promise<{ out: Buffer; result: Awaited<ReturnType<ParallelGzip['end']>> }> {
  const parts: Buffer[] = [];
  const gz = new ParallelGzip({
    inFlight,
    chunkBytes: 64 * 1024,
    // A slow, uneven sink: output order must not depend on when each member finishes.
    sink: async (data) => {
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      parts.push(data);
    },
  });
  for (const p of pieces) await gz.write(p);
  const result = await gz.end();
  return { out: Buffer.concat(parts), result };
}

describe('ParallelGzip', () => {
  it('gives the same bytes whatever the concurrency and write sizes, and digests both sides', async () => {
    const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(200_000, 7)]);
    const a = await compress([data], 1);
    const b = await compress([data.subarray(0, 1), data.subarray(1, 99_999), data.subarray(99_999)], 7);
    expect(b.out.equals(a.out)).toBe(true);
    expect(gunzipSync(a.out).equals(data)).toBe(true);
    expect(a.result.uncompressed).toEqual({ digest: digestOf(data), size: data.length });
    expect(a.result.compressed).toEqual({ digest: digestOf(a.out), size: a.out.length });
    // 500,000 bytes in 64 KiB chunks: 8 members, each with a normalised header (mtime 0, OS 255).
    let members = 0;
    for (let i = 0; i < a.out.length - 10; i++) if (a.out[i] === 0x1f && a.out[i + 1] === 0x8b && a.out[i + 2] === 8 && a.out.readUInt32LE(i + 4) === 0 && a.out[i + 9] === 0xff) members++;
    expect(members).toBeGreaterThanOrEqual(8);
  });

  it('writes one valid empty member for empty input', async () => {
    const { out, result } = await compress([], 2);
    expect(gunzipSync(out).length).toBe(0);
    expect(out[9]).toBe(0xff);
    expect(result.uncompressed.size).toBe(0);
  });
});
