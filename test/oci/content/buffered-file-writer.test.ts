import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BufferedFileWriter, WRITE_BUFFER } from '../../../oci/content/buffered-file-writer.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-bfw-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Uneven chunk sizes: below, at and above the writer's buffer, so chunks straddle its buffers every way. */
function chunks(data: Buffer): Buffer[] {
  const sizes = [1, 65536, WRITE_BUFFER, WRITE_BUFFER - 3, 3 * WRITE_BUFFER + 5, 7];
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(Buffer.from(data.subarray(at, at + n)));
    at += n;
  }
  return out;
}

describe('BufferedFileWriter', () => {
  it('writes from a position on, keeping the bytes before it, past its background-sync interval', async () => {
    const path = join(dir, 'f');
    const head = randomBytes(1000);
    await writeFile(path, Buffer.concat([head, Buffer.from('stale tail that gets overwritten')]));
    const data = randomBytes(17 * 1024 * 1024 + 333);
    const file = await open(path, 'r+');
    const writer = new BufferedFileWriter(file, path, head.length);
    for (const c of chunks(data)) {
      await writer.append(c);
      c.fill(0); // The caller may reuse its chunk once append resolved.
    }
    await writer.finish({ sync: true });
    expect((await readFile(path)).equals(Buffer.concat([head, data]))).toBe(true);
  });

  it('writes nothing for no bytes, and discard() closes the file once a failed write settled', async () => {
    const path = join(dir, 'empty');
    await writeFile(path, '');
    const file = await open(path, 'r+');
    const writer = new BufferedFileWriter(file, path);
    await writer.finish({ sync: false });
    expect(file.fd).toBe(-1);
    expect((await readFile(path)).length).toBe(0);
    const readOnly = await open(path, 'r');
    const failing = new BufferedFileWriter(readOnly, path);
    await failing.append(randomBytes(WRITE_BUFFER + 1));
    await expect(failing.finish({ sync: false })).rejects.toThrow(/EBADF/);
    await failing.discard();
    expect(readOnly.fd).toBe(-1); // Closed.
  });
});
