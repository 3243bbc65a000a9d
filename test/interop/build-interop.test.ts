import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, listTree, mountsUnder, type BuildWorkspace } from '../support/build-fixture.js';
import { startDistribution, type RunningDistribution } from '../support/distribution.js';
import { run, type KilnRun } from '../support/kiln.js';
import { requirePeer } from '../support/peers.js';

// `kiln build` of examples/hello judged by others: a CNCF registry takes the push, skopeo and umoci read every
// output format, podman runs the pushed image and loads the docker-archive. podman runs as root with its own vfs
// storage under the workspace (no mounts left behind); runc because crun fails on this kernel's cgroup layout.

const EXAMPLE = fileURLToPath(new URL('../../examples/hello', import.meta.url));
const GREETING = 'hello from a kiln build, there (hello 1.0.0)';

let ws: BuildWorkspace;
let registry: RunningDistribution;
let ref: string;
let build: KilnRun;
const at = (...p: string[]): string => join(ws.dir, ...p);

/** Asserts a peer or Kiln run succeeded, showing its stderr when it did not; returns its stdout. */
function ok(result: KilnRun): string {
  expect(result.code, result.stderr || result.stdout).toBe(0);
  return result.stdout;
}

function skopeo(...args: string[]): Promise<KilnRun> {
  // --insecure-policy: the tests judge formats, not the host's signature policy.
  return run(requirePeer('skopeo', 'skopeo'), ['--insecure-policy', ...args]);
}

function podman(...args: string[]): Promise<KilnRun> {
  requirePeer('runc', 'runc');
  const store = at('podman');
  const global = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--tmpdir', join(store, 'tmp'), '--storage-driver', 'vfs'];
  return run(requirePeer('podman', 'podman'), [...global, '--events-backend', 'none', '--runtime', 'runc', ...args], {
    env: { ...process.env, TMPDIR: at('scratch') },
  });
}

beforeAll(async () => {
  ws = await buildWorkspace();
  await mkdir(at('scratch'));
  registry = await startDistribution();
  ref = `${registry.host}/demo/hello:1`;
  build = await ws.build([
    '-t', ref, '--push',
    '--output', `type=oci,dest=${at('layout')},tar=false`,
    '--output', `type=oci-archive,dest=${at('image.oci.tar')}`,
    '--output', `type=docker-archive,dest=${at('image.docker.tar')}`,
    '--output', `type=oci,dest=${at('layout.tar')}`,
    '--iidfile', at('iid'),
    '--metadata-file', at('metadata.json'),
    EXAMPLE,
  ]);
});

afterAll(async () => {
  if (ws) {
    await podman('rm', '--all', '--force').catch(() => undefined);
    await podman('rmi', '--all', '--force').catch(() => undefined);
  }
  await registry?.stop();
  await ws?.cleanup();
});

describe('kiln build examples/hello, judged by skopeo, umoci and podman', () => {
  it('builds, pushes, and prints the digest', () => {
    expect(ok(build).trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
  });

  it('the CNCF registry took the push: skopeo inspect docker://… shows the printed digest and the config', async () => {
    const info = JSON.parse(ok(await skopeo('inspect', '--tls-verify=false', `docker://${ref}`))) as { Digest: string; Labels: Record<string, string>; Env: string[] };
    expect(info.Digest).toBe(build.stdout.trim());
    expect(info.Labels['org.opencontainers.image.title']).toBe('kiln example');
    expect(info.Env).toContain('GREETING=hello from a kiln build');
  });

  it('podman pulls the pushed image and runs it, printing the greeting', async () => {
    const out = ok(await podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--tls-verify=false', ref, 'there'));
    expect(out).toBe(`${GREETING}\n`);
  });

  it('umoci unpacks the type=oci,tar=false layout and the files are there', async () => {
    const bundle = at('bundle');
    ok(await run(requirePeer('umoci', 'umoci'), ['unpack', '--image', `${at('layout')}:1`, bundle]));
    const hello = await readFile(join(bundle, 'rootfs/usr/local/bin/hello'), 'utf8');
    expect(hello).toContain('(hello 1.0.0)');
    expect((await stat(join(bundle, 'rootfs/usr/local/bin/hello'))).mode & 0o777).toBe(0o755);
    const config = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; user: { uid: number } } };
    expect(config.process.args).toEqual(['/usr/local/bin/hello', 'world']);
    expect(config.process.user.uid).toBe(1000);
  });

  it('skopeo reads the oci-archive and it is the same image', async () => {
    const info = JSON.parse(ok(await skopeo('inspect', `oci-archive:${at('image.oci.tar')}`))) as { Digest: string };
    expect(info.Digest).toBe(build.stdout.trim());
  });

  it('skopeo reads the docker-archive, and podman load takes it under the -t name', async () => {
    const info = JSON.parse(ok(await skopeo('inspect', `docker-archive:${at('image.docker.tar')}`))) as { Layers: string[]; Labels: Record<string, string> };
    const oci = JSON.parse(ok(await skopeo('inspect', `oci:${at('layout')}:1`))) as { Layers: string[] };
    // The base's layer and the COPY's: the other instructions of the final stage change only the config.
    expect(oci.Layers).toHaveLength(2);
    expect(info.Layers).toHaveLength(oci.Layers.length);
    expect(info.Labels['org.opencontainers.image.title']).toBe('kiln example');
    const loaded = ok(await podman('load', '-i', at('image.docker.tar')));
    expect(loaded).toContain(ref);
    const out = ok(await podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', ref, 'again'));
    expect(out).toBe('hello from a kiln build, again (hello 1.0.0)\n');
  });

  it('type=oci without tar=false is a tar of an OCI layout that skopeo reads', async () => {
    const names = ok(await run(requirePeer('tar', 'tar'), ['-tf', at('layout.tar')])).split('\n').map((n) => n.replace(/^\.\//, ''));
    expect(names).toEqual(expect.arrayContaining(['oci-layout', 'index.json']));
    expect(names.some((n) => /^blobs\/sha256\/[a-f0-9]{64}$/.test(n))).toBe(true);
    const info = JSON.parse(ok(await skopeo('inspect', `oci-archive:${at('layout.tar')}:1`))) as { Digest: string };
    expect(info.Digest).toBe(build.stdout.trim());
  });

  it('--iidfile holds the printed digest and --metadata-file has containerimage.digest', async () => {
    const digest = build.stdout.trim();
    expect(await readFile(at('iid'), 'utf8')).toBe(digest);
    const meta = JSON.parse(await readFile(at('metadata.json'), 'utf8')) as Record<string, unknown>;
    expect(meta['containerimage.digest']).toBe(digest);
    expect(meta['image.name']).toBe(ref);
  });

  it('leaves no mounts and no scratch directories behind', async () => {
    expect(await mountsUnder(ws.dataDir)).toEqual([]);
    expect(await listTree(join(ws.dataDir, 'tmp'))).toEqual([]);
  });
});
