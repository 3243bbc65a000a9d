import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFromDirectory } from '../../builder/directory-image.js';
import { type Digest, digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { hostPlatform } from '../../oci/platform.js';
import { openTarget } from '../../oci/transports.js';
import { type KilnRun, run, runKiln } from '../support/kiln.js';
import { requirePeer } from '../support/peers.js';
import { makeRandomImage, type RandomImage, writeImageToTarget, writeIndexLayout } from '../support/random-image.js';
import { type ServeProcess, startServe } from '../support/serve.js';

// `kiln serve` as a real process, pushed to and pulled from by the clients people use: skopeo, podman, buildah
// (Debian's builds) and the Kiln CLI. podman and buildah run as root here; each gets its own storage under the
// test's temp dir (vfs: no mounts left behind), so the machine's images are neither used nor touched.

const GREETING = 'hello from kiln serve';

let work: string;
let server: ServeProcess;
/** The busybox image Kiln made, as an OCI layout. */
let busybox: { layout: string; digest: Digest };

function skopeo(...args: string[]): Promise<KilnRun> {
  // --insecure-policy: the tests judge the registry, not the host's signature policy.
  return run(requirePeer('skopeo', 'skopeo'), ['--insecure-policy', ...args]);
}

/** podman with an isolated store; runc because crun fails on this kernel's cgroup layout. */
function podman(...args: string[]): Promise<KilnRun> {
  requirePeer('runc', 'runc');
  const store = join(work, 'podman');
  const global = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--tmpdir', join(store, 'tmp'), '--storage-driver', 'vfs'];
  return run(requirePeer('podman', 'podman'), [...global, '--events-backend', 'none', '--runtime', 'runc', ...args], { env: scratchEnv() });
}

/**
 * `podman run --rm REF`, pulling over plain HTTP, without a network. The ulimits: podman's default open-file and
 * process limits exceed this machine's hard limits, and runc fails ("error setting rlimit type 7", then 6).
 */
function podmanRun(ref: string): Promise<KilnRun> {
  return podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--tls-verify=false', ref);
}

/** buildah with an isolated store of its own (podman must pull what buildah pushes, not find it locally). */
function buildah(...args: string[]): Promise<KilnRun> {
  const store = join(work, 'buildah');
  return run(requirePeer('buildah', 'buildah'), ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', ...args], { env: scratchEnv() });
}

/** Their temp files (image copies) go to the test's dir instead of /var/tmp. */
function scratchEnv(): NodeJS.ProcessEnv {
  return { ...process.env, TMPDIR: join(work, 'scratch') };
}

/** Asserts a peer or Kiln run succeeded, showing its stderr when it did not; returns its stdout. */
function ok(result: KilnRun): string {
  expect(result.code, result.stderr || result.stdout).toBe(0);
  return result.stdout;
}

/** The manifest a tag or digest names, fetched the way any client would, with its digest checked. */
async function manifestOf(repository: string, reference: string): Promise<{ digest: string; mediaType: string | null; bytes: Buffer }> {
  const accept = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ');
  const res = await fetch(`${server.url}/v2/${repository}/manifests/${reference}`, { headers: { accept } });
  expect(res.status).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  expect(res.headers.get('docker-content-digest')).toBe(digestOf(bytes));
  return { digest: digestOf(bytes), mediaType: res.headers.get('content-type'), bytes };
}

async function layout(name: string, image: RandomImage, tag: string): Promise<string> {
  const dir = join(work, name);
  const target = await openTarget(`oci:${dir}:${tag}`, { mode: 'write' });
  await writeImageToTarget(target, image, tag);
  await target.close();
  return dir;
}

/** The image in containers/image's `dir:` layout (containers-transports(5)): manifest.json and blobs named by hex digest. */
async function skopeoDir(name: string, image: RandomImage): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n');
  await writeFile(join(dir, 'manifest.json'), image.manifest.bytes);
  await writeFile(join(dir, image.configDesc.digest.slice('sha256:'.length)), image.config);
  for (const layer of image.layers) await writeFile(join(dir, layer.desc.digest.slice('sha256:'.length)), layer.bytes);
  return dir;
}

/** A one-layer base image: a static busybox and a few applet links, its command printing GREETING. */
async function makeBusyboxImage(): Promise<{ layout: string; digest: Digest }> {
  const binary = requirePeer('busybox', 'busybox-static');
  // A dynamic busybox would find no libc in the image.
  const ldd = await run(requirePeer('ldd', 'libc-bin'), [binary]);
  if (ldd.stdout.includes('=>')) throw new Error(`${binary} is dynamically linked: apt-get install -y busybox-static`);
  const rootfs = join(work, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  for (const dir of ['etc', 'tmp', 'root']) await mkdir(join(rootfs, dir));
  await copyFile(binary, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'uname']) await symlink('busybox', join(rootfs, 'bin', applet));
  const dir = join(work, 'busybox-layout');
  const target = await openTarget(`oci:${dir}:1.0`, { mode: 'write' });
  const manifest = await imageFromDirectory({
    directory: rootfs,
    target,
    tag: '1.0',
    platform: { os: 'linux', architecture: hostPlatform().architecture },
    config: { Cmd: ['/bin/echo', GREETING] },
  });
  await target.close();
  return { layout: dir, digest: manifest.digest };
}

/** Pushes the busybox layout to `repository:tag` with the Kiln CLI and checks the printed digest. */
async function pushBusybox(repository: string, tag: string): Promise<void> {
  const pushed = await runKiln(['copy', `oci:${busybox.layout}:1.0`, `${server.host}/${repository}:${tag}`]);
  expect(ok(pushed).trim()).toBe(busybox.digest);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-serve-clients-'));
  await mkdir(join(work, 'scratch'));
  server = await startServe(['--addr', '127.0.0.1:0', '--data', join(work, 'data')]);
  busybox = await makeBusyboxImage();
});

afterAll(async () => {
  const failures: string[] = [];
  if (work) {
    // Containers first (a failed `run --rm` may leave one), then images; with vfs nothing stays mounted.
    const cleanups: Array<[string, () => Promise<KilnRun>]> = [
      ['podman rm', () => podman('rm', '--all', '--force')],
      ['podman rmi', () => podman('rmi', '--all', '--force')],
      ['buildah rm', () => buildah('rm', '--all')],
      ['buildah rmi', () => buildah('rmi', '--all', '--force')],
    ];
    for (const [what, cleanup] of cleanups) {
      const result = await cleanup().catch((err: unknown) => ({ code: -1, stdout: '', stderr: String(err) }));
      if (result.code !== 0) failures.push(`${what}: ${result.stderr}`);
    }
  }
  if (server && server.child.exitCode === null) await server.stop();
  if (work) await rm(work, { recursive: true, force: true });
  if (failures.length > 0) throw new Error(`cleanup failed:\n${failures.join('\n')}`);
});

describe('kiln serve with the Kiln client', () => {
  it('`kiln copy` pushes a busybox image built by Kiln and pulls it back; `kiln tags` and `kiln inspect` read it', async () => {
    await pushBusybox('kiln/busybox', '1.0');
    await pushBusybox('kiln/busybox', 'latest');
    expect(ok(await runKiln(['tags', `${server.host}/kiln/busybox`])).trim().split('\n')).toEqual(['1.0', 'latest']);

    const inspected = JSON.parse(ok(await runKiln(['inspect', '--format', 'json', `${server.host}/kiln/busybox:1.0`]))) as {
      digest: string;
      cmd: string[];
      layers: unknown[];
    };
    expect(inspected.digest).toBe(busybox.digest);
    expect(inspected.cmd).toEqual(['/bin/echo', GREETING]);
    expect(inspected.layers).toHaveLength(1);

    const back = join(work, 'kiln-back');
    expect(ok(await runKiln(['copy', `${server.host}/kiln/busybox:latest`, `oci:${back}:1.0`])).trim()).toBe(busybox.digest);
    const local = await openTarget(`oci:${back}:1.0`, { mode: 'read' });
    expect((await local.resolve()).digest).toBe(busybox.digest);
    await local.close();
    expect((await manifestOf('kiln/busybox', 'latest')).digest).toBe(busybox.digest);
  });
});

describe('kiln serve with skopeo', () => {
  it.each(['oci', 'docker'] as const)('`skopeo copy` pushes an image with %s media types and pulls it back byte for byte', async (format) => {
    const image = await makeRandomImage({ layers: 2, layerSize: 200_000, format });
    // containers/image reads only OCI manifests from an OCI layout; a Docker one comes from its dir: transport.
    const src = format === 'oci' ? `oci:${await layout('skopeo-oci-src', image, 'v1')}:v1` : `dir:${await skopeoDir('skopeo-docker-src', image)}`;
    const ref = `docker://${server.host}/skopeo/${format}:v1`;
    ok(await skopeo('copy', '--quiet', '--dest-tls-verify=false', src, ref));

    const remote = await manifestOf(`skopeo/${format}`, 'v1');
    expect(remote.bytes).toEqual(image.manifest.bytes);
    expect(remote.mediaType).toBe(image.manifest.mediaType);
    const inspected = JSON.parse(ok(await skopeo('inspect', '--tls-verify=false', ref))) as { Digest: string; Layers: string[]; RepoTags: string[] };
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.desc.digest));
    expect(inspected.RepoTags).toEqual(['v1']);
    expect(digestOf(ok(await skopeo('inspect', '--raw', '--tls-verify=false', ref)))).toBe(image.manifest.digest);

    // Registry to registry: skopeo knows the blobs are in skopeo/<format> and mounts them across repositories.
    const mounted = `docker://${server.host}/skopeo/${format}-copy:v2`;
    ok(await skopeo('copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', ref, mounted));
    expect((await manifestOf(`skopeo/${format}-copy`, 'v2')).digest).toBe(image.manifest.digest);

    // Pulled back the same way (an OCI layout would convert a Docker manifest): same manifest bytes, same blobs.
    const back = join(work, `skopeo-${format}-back`);
    ok(await skopeo('copy', '--quiet', '--src-tls-verify=false', mounted, format === 'oci' ? `oci:${back}:v1` : `dir:${back}`));
    const blobPath = (digest: string): string => (format === 'oci' ? join(back, 'blobs', 'sha256', digest.slice(7)) : join(back, digest.slice(7)));
    const manifestPath = format === 'oci' ? blobPath(image.manifest.digest) : join(back, 'manifest.json');
    expect(await readFile(manifestPath)).toEqual(image.manifest.bytes);
    for (const layer of image.layers) expect(digestOf(await readFile(blobPath(layer.desc.digest)))).toBe(layer.desc.digest);
    expect(await readFile(blobPath(image.configDesc.digest))).toEqual(image.config);
    expect(JSON.parse(ok(await skopeo('list-tags', '--tls-verify=false', `docker://${server.host}/skopeo/${format}`)))).toMatchObject({ Tags: ['v1'] });
  });

  it('`skopeo copy --all` pushes a multi-platform index and pulls every platform back', async () => {
    const amd = await makeRandomImage({ layers: 1, platform: { architecture: 'amd64', os: 'linux' } });
    const arm = await makeRandomImage({ layers: 1, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } });
    const src = join(work, 'skopeo-index-src');
    const index = await writeIndexLayout(src, 'multi', [
      { image: amd, platform: { architecture: 'amd64', os: 'linux' } },
      { image: arm, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ]);

    const ref = `docker://${server.host}/skopeo/multi:multi`;
    ok(await skopeo('copy', '--all', '--quiet', '--dest-tls-verify=false', `oci:${src}:multi`, ref));
    expect((await manifestOf('skopeo/multi', 'multi')).bytes).toEqual(index.bytes);
    expect((await manifestOf('skopeo/multi', arm.manifest.digest)).bytes).toEqual(arm.manifest.bytes);
    // skopeo resolves the platform through the index the registry serves.
    const armInspect = JSON.parse(ok(await skopeo('--override-arch', 'arm64', '--override-variant', 'v8', 'inspect', '--tls-verify=false', ref))) as {
      Architecture: string;
      Layers: string[];
    };
    expect(armInspect.Architecture).toBe('arm64');
    expect(armInspect.Layers).toEqual(arm.layers.map((l) => l.desc.digest));

    const back = join(work, 'skopeo-index-back');
    ok(await skopeo('copy', '--all', '--quiet', '--src-tls-verify=false', ref, `oci:${back}:multi`));
    const pulled = await openTarget(`oci:${back}:multi`, { mode: 'read' });
    expect((await pulled.resolve()).digest).toBe(index.digest);
    expect((await pulled.getManifest(amd.manifest.digest)).bytes).toEqual(amd.manifest.bytes);
    await pulled.close();
  });
});

describe('kiln serve with podman', () => {
  it('`podman pull` and `podman run --rm` a busybox image pushed with `kiln copy`', async () => {
    await pushBusybox('podman/busybox', '1.0');
    const ref = `${server.host}/podman/busybox:1.0`;
    ok(await podman('pull', '--quiet', '--tls-verify=false', ref));
    // podman reports the digest of the manifest it pulled: the one Kiln wrote, unchanged by the registry.
    expect(ok(await podman('image', 'inspect', '--format', '{{.Digest}}', ref)).trim()).toBe(busybox.digest);
    expect(ok(await podmanRun(ref))).toBe(`${GREETING}\n`);
  });
});

describe('kiln serve with buildah', () => {
  it('`buildah from` pulls the busybox base; `buildah push` keeps the digest of what it committed; podman runs it', async () => {
    await pushBusybox('buildah/busybox', '1.0');
    const base = `docker://${server.host}/buildah/busybox:1.0`;
    const ctr = ok(await buildah('from', '--quiet', '--name', 'kiln-serve-test', '--tls-verify=false', base)).trim();
    const hello = join(work, 'hello.txt');
    await writeFile(hello, 'made by buildah\n');
    ok(await buildah('copy', ctr, hello, '/hello.txt'));
    ok(await buildah('config', '--cmd', '["/bin/cat", "/hello.txt"]', ctr));
    ok(await buildah('commit', '--quiet', '--format', 'oci', ctr, 'localhost/kiln-test/hello:1.0'));

    const pushes = [
      { format: 'oci', tag: 'oci', mediaType: MediaType.OciManifest },
      { format: 'v2s2', tag: 'docker', mediaType: MediaType.DockerManifest },
    ];
    for (const push of pushes) {
      const digestFile = join(work, `buildah-${push.tag}.digest`);
      const ref = `docker://${server.host}/buildah/hello:${push.tag}`;
      ok(await buildah('push', '--quiet', '--tls-verify=false', '--format', push.format, '--digestfile', digestFile, 'localhost/kiln-test/hello:1.0', ref));
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      const remote = await manifestOf('buildah/hello', push.tag);
      expect(remote.digest).toBe(pushed);
      expect(remote.mediaType).toBe(push.mediaType);
    }
    const inspected = JSON.parse(ok(await runKiln(['inspect', '--format', 'json', `${server.host}/buildah/hello:oci`]))) as { cmd: string[]; layers: unknown[] };
    expect(inspected.cmd).toEqual(['/bin/cat', '/hello.txt']);
    expect(inspected.layers).toHaveLength(2);

    for (const tag of ['oci', 'docker']) expect(ok(await podmanRun(`${server.host}/buildah/hello:${tag}`))).toBe('made by buildah\n');
  });
});
