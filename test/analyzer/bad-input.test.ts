import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyze } from '../../analyzer/analyze.js';
import { digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { openTarget } from '../../oci/transports.js';
import { layerTar, replaceBlob, workDir, writeImage, type LayerSpec } from './images.js';

const layers: LayerSpec[] = [{ entries: [{ name: 'a', size: 100 }] }, { entries: [{ name: 'b', data: Buffer.alloc(100, 'x') }] }];

let work: Awaited<ReturnType<typeof workDir>>;
beforeAll(async () => {
  work = await workDir();
});
afterAll(async () => {
  await work.dispose();
});

async function analyzeSpec(spec: string): Promise<unknown> {
  const target = await openTarget(spec, { mode: 'read' });
  try {
    return await analyze({ target });
  } finally {
    await target.close();
  }
}

async function failure(spec: string): Promise<KilnError> {
  const err: unknown = await analyzeSpec(spec).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KilnError);
  return err as KilnError;
}

describe('bad input: one clear error naming the layer', () => {
  it('a layer blob whose bytes do not match its digest', async () => {
    const { spec, image } = await writeImage(work.dir, 'digest', layers);
    const second = image.layers[1];
    if (!second) throw new Error('no layer');
    // Same length, different content: only the digest can tell.
    const other = gzipSync(await layerTar([{ name: 'b', data: Buffer.alloc(100, 'y') }]));
    expect(other.length).toBe(second.bytes.length);
    await replaceBlob(work.dir, 'digest', second.desc.digest, other);
    const err = await failure(spec);
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toContain(`layer 2/2 ${second.desc.digest}`);
  });

  it('a truncated layer', async () => {
    const { spec, image } = await writeImage(work.dir, 'truncated', layers);
    const first = image.layers[0];
    if (!first) throw new Error('no layer');
    await replaceBlob(work.dir, 'truncated', first.desc.digest, first.bytes.subarray(0, Math.floor(first.bytes.length / 2)));
    const err = await failure(spec);
    expect(err.message).toContain(`layer 1/2 ${first.desc.digest}`);
  });

  it('a corrupt (non-gzip) layer', async () => {
    const { spec, image } = await writeImage(work.dir, 'corrupt', layers);
    const first = image.layers[0];
    if (!first) throw new Error('no layer');
    await replaceBlob(work.dir, 'corrupt', first.desc.digest, Buffer.alloc(first.bytes.length, 0x41));
    const err = await failure(spec);
    expect(err.message).toContain(`layer 1/2 ${first.desc.digest}`);
  });

  it('a layer that is gzip but not a tar (digests all correct)', async () => {
    const raw = Buffer.from('this is not a tar archive, just text long enough to fill a header block. '.repeat(10));
    const { spec } = await writeImage(work.dir, 'nottar', [layers[0] as LayerSpec, { entries: [], raw }]);
    const err = await failure(spec);
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toMatch(/^layer 2\/2 sha256:[0-9a-f]{64} is not a readable layer tar: /);
  });

  it("a config whose diff_ids do not match the layers", async () => {
    const { spec } = await writeImage(work.dir, 'diffid', layers, { diffIds: [digestOf('a'), digestOf('b')] });
    const err = await failure(spec);
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toMatch(/layer 1\/2 sha256:[0-9a-f]{64}: uncompressed content has digest sha256:[0-9a-f]{64}, expected sha256:/);
    expect(err.message).toContain("the config's diff_id");
  });

  it('a config with fewer diff_ids than layers', async () => {
    const { spec } = await writeImage(work.dir, 'count', layers, { diffIds: [digestOf('a')] });
    const err = await failure(spec);
    expect(err.code).toBe('VALIDATION');
    expect(err.message).toContain('lists 1 diff_ids but the manifest has 2 layers');
  });
});
