import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../../oci/digest.js';
import { MediaType } from '../../../oci/media-types.js';
import { buildWorkspace, mountsUnder, type BuildWorkspace } from '../../support/build-fixture.js';
import { startDistribution, type RunningDistribution } from '../../support/distribution.js';
import { run, type KilnRun } from '../../support/kiln.js';
import { requirePeer } from '../../support/peers.js';

// Where a build goes besides the local store (--output, --push, --iidfile, -q), and what a failed build must not leave.

let ws: BuildWorkspace;
let registry: RunningDistribution;
let ctx: string;
let failing: string;
const at = (...p: string[]): string => join(ws.dir, ...p);

function ok(result: KilnRun): string {
  expect(result.code, result.stderr || result.stdout).toBe(0);
  return result.stdout;
}

async function registryDigest(repository: string, reference: string): Promise<string | number> {
  const res = await fetch(`http://${registry.host}/v2/${repository}/manifests/${reference}`, { headers: { accept: MediaType.OciManifest } });
  const bytes = Buffer.from(await res.arrayBuffer());
  return res.status === 200 ? digestOf(bytes) : res.status;
}

async function names(): Promise<string[]> {
  return (JSON.parse(ok(await ws.kiln(['images', '--format', 'json']))) as { name: string }[]).map((r) => r.name);
}

const exists = async (p: string): Promise<boolean> => (await stat(p).catch(() => undefined)) !== undefined;

beforeAll(async () => {
  ws = await buildWorkspace();
  registry = await startDistribution();
  ctx = await ws.context({ Dockerfile: 'FROM busybox\nRUN echo out > /out\n' });
  failing = await ws.context({ Dockerfile: 'FROM busybox\nRUN echo first line && echo "the last words" && exit 3\n' });
});
afterAll(async () => {
  await registry?.stop();
  await ws?.cleanup();
});

describe('kiln build outputs', () => {
  it('-q prints the digest and nothing else', async () => {
    const r = await ws.build(['-q', ctx]);
    expect(ok(r)).toMatch(/^sha256:[a-f0-9]{64}\n$/);
    expect(r.stderr).toBe('');
  });

  it('type=registry,name=… pushes to every listed name, without -t', async () => {
    const a = `${registry.host}/out/a:1`;
    const b = `${registry.host}/out/b:2`;
    const digest = ok(await ws.build(['--output', `type=registry,name="${a},${b}"`, ctx])).trim();
    expect(await registryDigest('out/a', '1')).toBe(digest);
    expect(await registryDigest('out/b', '2')).toBe(digest);
  });

  it('an OCI layout names the image by the first -t\'s tag, as buildx does; without -t it is untagged', async () => {
    const digest = ok(await ws.build(['-t', 'demo/out:7', '-t', 'demo/out:8', '--output', `type=oci,dest=${at('tagged')},tar=false`, ctx])).trim();
    const tagged = JSON.parse(await readFile(at('tagged', 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    expect(tagged.manifests).toEqual([expect.objectContaining({ digest, annotations: { 'org.opencontainers.image.ref.name': '7' } })]);
    ok(await ws.build(['--output', `type=oci,dest=${at('untagged')},tar=false`, ctx]));
    const untagged = JSON.parse(await readFile(at('untagged', 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    expect(untagged.manifests).toEqual([expect.objectContaining({ digest })]);
    expect(untagged.manifests[0]?.annotations?.['org.opencontainers.image.ref.name']).toBeUndefined();
  });

  it('a docker-archive without -t holds the config and layers docker load expects', async () => {
    ok(await ws.build(['--output', `type=docker-archive,dest=${at('d.tar')}`, ctx]));
    const tar = requirePeer('tar', 'tar');
    const manifest = JSON.parse(ok(await run(tar, ['-xOf', at('d.tar'), 'manifest.json']))) as { Config: string; Layers: string[]; RepoTags?: string[] | null }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.Layers).toHaveLength(2);
    expect(manifest[0]!.RepoTags ?? []).toEqual([]);
    const members = ok(await run(tar, ['-tf', at('d.tar')])).split('\n');
    for (const m of [manifest[0]!.Config, ...manifest[0]!.Layers]) expect(members).toContain(m);
  });

  it('flag mistakes are usage errors (exit 2) naming the flag, before anything is built', async () => {
    const cases: Array<[string[], string]> = [
      [['--push'], '--push needs at least one -t NAME'],
      [['--output', 'type=local,dest=x'], 'unsupported type "local"'],
      [['--output', 'dest=x'], 'missing type='],
      [['--output', 'type=oci'], 'needs dest='],
      [['--output', 'type=oci,dest=x,tar=maybe'], 'tar= must be true or false'],
    ];
    for (const [flags, message] of cases) {
      const r = await ws.build([...flags, ctx]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
    }
  });
});

describe('a failed build', () => {
  let r: KilnRun;
  const ref = (): string => `${registry.host}/fail/app:1`;

  beforeAll(async () => {
    r = await ws.build([
      '-t', ref(), '-t', 'fail/local:1', '--push',
      '--output', `type=oci,dest=${at('fail-layout')},tar=false`,
      '--output', `type=oci-archive,dest=${at('fail.tar')}`,
      '--iidfile', at('fail-iid'), '--metadata-file', at('fail-meta.json'),
      failing,
    ]);
  });

  it('exits 1 with the RUN, its exit code and its last output lines, and prints no digest', () => {
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/exited with code 3/);
    expect(r.stderr).toContain('the last words');
  });

  it('tags nothing, pushes nothing, writes no output, iidfile or metadata file', async () => {
    expect(await names()).not.toEqual(expect.arrayContaining([expect.stringContaining('fail/')]));
    expect(await registryDigest('fail/app', '1')).toBe(404);
    for (const p of ['fail-layout', 'fail.tar', 'fail-iid', 'fail-meta.json']) expect(await exists(at(p)), p).toBe(false);
  });

  it('leaves no mounts and no scratch directories', async () => {
    expect(await mountsUnder(ws.dir)).toEqual([]);
    expect(await readdir(join(ws.dataDir, 'tmp'))).toEqual([]);
  });
});
