import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyze } from '../../analyzer/analyze.js';
import { openTarget } from '../../oci/transports.js';
import { makeImageIndex, writeImageToTarget } from '../support/random-image.js';
import { analyzeLayers, makeImage, workDir, type LayerSpec } from './images.js';

// Where images come from: every compression, every transport, one platform of an index.
let work: Awaited<ReturnType<typeof workDir>>;
beforeAll(async () => {
  work = await workDir();
});
afterAll(async () => {
  await work.dispose();
});

describe('layer formats', () => {
  it('reads gzip, zstd and uncompressed layers alike', async () => {
    const r = await analyzeLayers([
      { entries: [{ name: 'a', size: 10 }], compression: 'gzip' },
      { entries: [{ name: 'a', size: 20 }], compression: 'zstd' },
      { entries: [{ name: 'a', size: 30 }], compression: 'none' },
    ]);
    expect(r.layers.map((l) => l.sizeBytes)).toEqual([10, 20, 30]);
    expect(r.dive.inefficientFiles).toEqual([{ count: 3, sizeBytes: 60, path: '/a' }]);
  });
});

describe('image locations', () => {
  it('reads oci-archive and docker-archive files with the same numbers', async () => {
    const spec: LayerSpec[] = [{ entries: [{ name: 'a', size: 100 }] }, { entries: [{ name: 'a', size: 40 }, { name: 'b', size: 7 }] }];
    const image = await makeImage(spec);
    const results = [];
    for (const location of [`oci-archive:${join(work.dir, 'img.tar')}:t`, `docker-archive:${join(work.dir, 'docker.tar')}:app:t`]) {
      const writer = await openTarget(location, { mode: 'write' });
      await writeImageToTarget(writer, image, 't');
      await writer.close();
      const reader = await openTarget(location, { mode: 'read' });
      results.push(await analyze({ target: reader }).finally(() => reader.close()));
    }
    // /a: 100 + 40 → min 40; /b 7 → (40+7)/(140+7).
    for (const r of results) {
      expect(r.dive.efficiency).toBe(47 / 147);
      expect(r.dive.wastedBytes).toBe(140);
      expect(r.layers.map((l) => l.sizeBytes)).toEqual([100, 47]);
    }
  });
});

describe('indexes', () => {
  it('--platform picks the manifest of an index; an absent platform is an error listing the others', async () => {
    const amd = await makeImage([{ entries: [{ name: 'a', size: 1 }] }]);
    const arm = await makeImage([{ entries: [{ name: 'a', size: 2 }, { name: 'b', size: 3 }] }]);
    const location = `oci:${join(work.dir, 'multi')}:t`;
    const writer = await openTarget(location, { mode: 'write' });
    await writeImageToTarget(writer, amd);
    await writeImageToTarget(writer, arm);
    await writer.putManifest(makeImageIndex([{ image: amd, platform: { os: 'linux', architecture: 'amd64' } }, { image: arm, platform: { os: 'linux', architecture: 'arm64' } }]), 't');
    await writer.close();
    const reader = await openTarget(location, { mode: 'read' });
    try {
      const r = await analyze({ target: reader, platform: { os: 'linux', architecture: 'arm64' } });
      expect(r.dive.sizeBytes).toBe(5);
      expect(r.image.digest).toBe(arm.manifest.digest);
      await expect(analyze({ target: reader, platform: { os: 'linux', architecture: 's390x' } })).rejects.toThrow('available: linux/amd64, linux/arm64');
    } finally {
      await reader.close();
    }
  });
});
