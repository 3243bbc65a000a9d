import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { buildWorkspace, readLayoutImage, type BuildWorkspace } from '../support/build-fixture.js';
import { startDistribution, type RunningDistribution } from '../support/distribution.js';
import type { KilnRun } from '../support/kiln.js';

// The local image store through the CLI, as docker/podman users drive it: build -t, images, push, pull, rmi, prune.

interface Row {
  name: string;
  repository: string;
  tag: string;
  id: string;
  digest: string;
  created?: string;
  size: number;
}

const DOCKERFILE = 'FROM busybox\nCOPY note.txt /note.txt\nRUN echo built > /built\n';

let ws: BuildWorkspace;
let registry: RunningDistribution;
let ctx: string;
let built: string;

function ok(result: KilnRun): string {
  expect(result.code, result.stderr || result.stdout).toBe(0);
  return result.stdout;
}

async function rows(dataDir?: string): Promise<Row[]> {
  const r = await ws.kiln(['images', '--format', 'json'], dataDir ? { env: { KILN_DATA_DIR: dataDir } } : {});
  return JSON.parse(ok(r)) as Row[];
}

/** The manifest the registry serves for `repository:reference`, its digest checked. */
async function registryManifest(repository: string, reference: string): Promise<{ status: number; digest?: string }> {
  const accept = [MediaType.OciManifest, MediaType.DockerManifest].join(', ');
  const res = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, { headers: { accept } });
  const bytes = Buffer.from(await res.arrayBuffer());
  return res.status === 200 ? { status: 200, digest: digestOf(bytes) } : { status: res.status };
}

const steps = (r: KilnRun): { run: number; cached: number } => ({
  run: r.stderr.split('\n').filter((l) => /^#\d+ \[/.test(l)).length,
  cached: r.stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l)).length,
});

beforeAll(async () => {
  ws = await buildWorkspace();
  registry = await startDistribution();
  ctx = await ws.context({ 'note.txt': 'a note\n', Dockerfile: DOCKERFILE });
  built = ok(await ws.build(['-t', 'a/b:1', '-t', 'keep/me:1', ctx])).trim();
});
afterAll(async () => {
  await registry?.stop();
  await ws?.cleanup();
});

describe('kiln images', () => {
  it('lists the -t names as JSON, with the manifest digest, a short image ID, created and size', async () => {
    const list = await rows();
    const ab = list.find((r) => r.name === 'docker.io/a/b:1');
    expect(ab).toMatchObject({ repository: 'a/b', tag: '1', digest: built, created: '1970-01-01T00:00:00Z' });
    expect(ab?.id).toMatch(/^[a-f0-9]{12}$/);
    expect(ab?.size).toBeGreaterThan(0);
    expect(list.find((r) => r.name === 'docker.io/keep/me:1')?.digest).toBe(built);
    // The busybox base the build imported is build cache, not one of the user's images.
    expect(list.map((r) => r.name)).toEqual(['docker.io/a/b:1', 'docker.io/keep/me:1']);
  });

  it('prints a docker-style table, and -q prints the image ID once', async () => {
    const table = ok(await ws.kiln(['images'])).trimEnd().split('\n');
    expect(table[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    const id = (await rows())[0]!.id;
    expect(table.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ['a/b', '1', id],
      ['keep/me', '1', id],
    ]);
    expect(ok(await ws.kiln(['images', '-q'])).trim()).toBe(id);
  });
});

describe('kiln push and kiln pull', () => {
  it('push copies a stored image to a CNCF registry under another name, unchanged', async () => {
    const dest = `${registry.host}/x/y:2`;
    expect(ok(await ws.kiln(['push', 'a/b:1', dest])).trim()).toBe(built);
    expect(await registryManifest('x/y', '2')).toEqual({ status: 200, digest: built });
  });

  it('pull into a fresh store lists the image under its reference, with the same digest and content', async () => {
    const fresh = join(ws.dir, 'fresh-store');
    const pulled = await ws.kiln(['pull', `${registry.host}/x/y:2`], { env: { KILN_DATA_DIR: fresh } });
    expect(ok(pulled).trim()).toBe(built);
    expect(await rows(fresh)).toEqual([expect.objectContaining({ name: `${registry.host}/x/y:2`, digest: built })]);
    // And it is usable from there: push it back out of the fresh store as a layout and read the RUN's file.
    const out = join(ws.dir, 'from-fresh');
    ok(await ws.kiln(['push', `${registry.host}/x/y:2`, `oci:${out}:2`], { env: { KILN_DATA_DIR: fresh } }));
    const image = await readLayoutImage(out);
    expect(image.layers.at(-1)!.toString('latin1')).toContain('built\n');
  });

  it('push of an image the store does not have: exit 1, names it, hints at kiln images; nothing pushed', async () => {
    const r = await ws.kiln(['push', 'nope/nothing:1', `${registry.host}/nope/nothing:1`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('"nope/nothing:1" is not in the local store');
    expect(r.stderr).toContain('kiln images');
    expect((await registryManifest('nope/nothing', '1')).status).toBe(404);
  });

  it('pull of a reference the registry does not have: exit 1 naming it, nothing stored', async () => {
    const fresh = join(ws.dir, 'fresh-store-2');
    const r = await ws.kiln(['pull', `${registry.host}/x/missing:1`], { env: { KILN_DATA_DIR: fresh } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('x/missing');
    expect(await rows(fresh)).toEqual([]);
  });
});

describe('kiln rmi', () => {
  it('removes the name only; the other name of the same image stays', async () => {
    expect(ok(await ws.kiln(['rmi', 'a/b:1'])).trim()).toBe('Untagged: docker.io/a/b:1');
    expect((await rows()).map((r) => r.name)).toEqual(['docker.io/keep/me:1']);
  });

  it('an unknown image: exit 1 with a hint', async () => {
    const r = await ws.kiln(['rmi', 'a/b:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('"a/b:1" is not in the local store');
    expect(r.stderr).toContain('hint:');
  });
});

describe('kiln prune', () => {
  it('clears the build cache (the next build runs every step) and keeps the named images usable', async () => {
    expect(steps(await ws.build([ctx]))).toEqual({ run: 2, cached: 2 });
    expect(ok(await ws.kiln(['prune']))).toMatch(/^Deleted [1-9]\d* cache entries and \d+ blobs; reclaimed /);
    expect(await readdir(join(ws.dataDir, 'cache')).catch(() => [])).toEqual([]);

    expect(await rows()).toEqual([expect.objectContaining({ name: 'docker.io/keep/me:1', digest: built })]);
    const out = join(ws.dir, 'after-prune');
    expect(ok(await ws.kiln(['push', 'keep/me:1', `oci:${out}:1`])).trim()).toBe(built);
    expect((await readLayoutImage(out)).layers).toHaveLength(3);

    const again = await ws.build([ctx]);
    expect(steps(again)).toEqual({ run: 2, cached: 0 });
    expect(ok(again).trim()).toBe(built);
  });
});
