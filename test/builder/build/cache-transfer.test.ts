import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDistribution, type RunningDistribution } from '../../support/distribution.js';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';

const DOCKERFILE = `FROM busybox
COPY a.txt /a.txt
RUN cat /a.txt > /b.txt && echo built
`;

let ws: BuildWorkspace;
let ctx: string;

const cachedCount = (stderr: string): number => stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l)).length;

beforeAll(async () => {
  ws = await buildWorkspace();
  ctx = await ws.context({ 'a.txt': 'a\n', Dockerfile: DOCKERFILE });
});
afterAll(async () => ws.cleanup());

describe('--cache-to / --cache-from', () => {
  it('a fresh store reuses every step from a local cache export, with the same digest', async () => {
    const cacheDir = join(ws.dir, 'cache');
    const first = await ws.build(['--cache-to', `type=local,dest=${cacheDir}`, ctx]);
    expect(first.code).toBe(0);
    expect(cachedCount(first.stderr)).toBe(0);
    const index = JSON.parse(await readFile(join(cacheDir, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
    expect(index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name']).toBe('kiln-cache');

    const second = await ws.build(['--cache-from', `type=local,src=${cacheDir}`, ctx], { env: { KILN_DATA_DIR: join(ws.dir, 'fresh-store') } });
    expect(second.code).toBe(0);
    expect(cachedCount(second.stderr)).toBe(2);
    expect(second.stderr).not.toContain('#2 built');
    expect(second.stdout.trim()).toBe(first.stdout.trim());
  });

  it('a cache that does not exist yet is empty, not an error', async () => {
    const r = await ws.build(['--cache-from', `type=local,src=${join(ws.dir, 'nowhere')}`, ctx], { env: { KILN_DATA_DIR: join(ws.dir, 'store-3') } });
    expect(r.code).toBe(0);
    expect(cachedCount(r.stderr)).toBe(0);
  });

  it('something that is not a kiln cache is refused with a clear error', async () => {
    const r = await ws.build(['--cache-from', `oci:${ws.baseLayout}:base`, ctx], { env: { KILN_DATA_DIR: join(ws.dir, 'store-4') } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a kiln build cache/);
  });

  describe('through a registry (CNCF Distribution)', () => {
    let registry: RunningDistribution;
    beforeAll(async () => {
      registry = await startDistribution();
    });
    afterAll(async () => registry.stop());

    it('exports to type=registry and a fresh store imports from it', async () => {
      const ref = `${registry.host}/cache/app:buildcache`;
      const first = await ws.build(['--cache-to', `type=registry,ref=${ref}`, ctx], { env: { KILN_DATA_DIR: join(ws.dir, 'store-5') } });
      expect(first.code).toBe(0);
      const second = await ws.build(['--cache-from', ref, ctx], { env: { KILN_DATA_DIR: join(ws.dir, 'store-6') } });
      expect(second.code).toBe(0);
      expect(cachedCount(second.stderr)).toBe(2);
      expect(second.stdout.trim()).toBe(first.stdout.trim());
    });
  });
});
