import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyImage } from '../../oci/copy.js';
import { MediaType } from '../../oci/media-types.js';
import { openTarget } from '../../oci/transports.js';
import { runKiln } from '../support/kiln.js';
import { type ServeProcess, startServe } from '../support/serve.js';
import { makeRandomImage, type RandomImage, writeImageToTarget, writeIndexLayout } from '../support/random-image.js';

// `kiln serve` as a real process, with the Kiln client (library and CLI) pushing and pulling through it.
const BIN = fileURLToPath(new URL('../../bin/kiln.js', import.meta.url));

let work: string;
let data: string;
let server: ServeProcess;

async function layout(name: string, image: RandomImage, tag: string): Promise<string> {
  const dir = join(work, name);
  const target = await openTarget(`oci:${dir}:${tag}`, { mode: 'write' });
  await writeImageToTarget(target, image, tag);
  await target.close();
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-serve-'));
  data = join(work, 'data');
  server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
});
afterAll(async () => {
  if (server && server.child.exitCode === null) await server.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('kiln serve with the Kiln client', () => {
  it('prints the bound address for port 0 and answers /v2/', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).not.toMatch(/:0$/);
    const res = await fetch(`${server.url}/v2/`);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('copyImage pushes a multi-platform index and pulls it back with identical digests and bytes', async () => {
    const amd = await makeRandomImage({ layers: 3, layerSize: 300_000 });
    const arm = await makeRandomImage({ layers: 2, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } });
    const src = join(work, 'index-src');
    const index = await writeIndexLayout(src, 'multi', [
      { image: amd, platform: { architecture: 'amd64', os: 'linux' } },
      { image: arm, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ]);

    const source = await openTarget(`oci:${src}:multi`, { mode: 'read' });
    const destination = await openTarget(`${server.host}/kiln/multi:v1`, { mode: 'write' });
    const pushed = await copyImage({ source, destination });
    await destination.close();
    await source.close();
    expect(pushed.digest).toBe(index.digest);
    expect(pushed.manifests).toBe(3);

    const back = join(work, 'index-back');
    const remote = await openTarget(`${server.host}/kiln/multi:v1`, { mode: 'read' });
    const local = await openTarget(`oci:${back}:v1`, { mode: 'write' });
    const pulled = await copyImage({ source: remote, destination: local });
    await local.close();
    await remote.close();
    expect(pulled.digest).toBe(index.digest);
    const reread = await openTarget(`oci:${back}:v1`, { mode: 'read' });
    const manifest = await reread.getManifest(amd.manifest.digest);
    expect(manifest.bytes).toEqual(amd.manifest.bytes);
    await reread.close();
  });

  it('`kiln copy` pushes and pulls through it, and `kiln tags` lists the tags', async () => {
    const image = await makeRandomImage({ format: 'docker' });
    const dir = await layout('cli-src', image, 'v2');
    const push = await runKiln(['copy', `oci:${dir}:v2`, `${server.host}/cli/app:v2`]);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout.trim()).toBe(image.manifest.digest);
    const again = await runKiln(['copy', `oci:${dir}:v2`, `${server.host}/cli/app:v3`]);
    expect(again.code, again.stderr).toBe(0);
    const tags = await runKiln(['tags', `${server.host}/cli/app`]);
    expect(tags.stdout.trim().split('\n')).toEqual(['v2', 'v3']);
    const pull = await runKiln(['copy', `${server.host}/cli/app:v2`, `oci:${join(work, 'cli-back')}:v2`]);
    expect(pull.code, pull.stderr).toBe(0);
    const res = await fetch(`${server.url}/v2/cli/app/manifests/v2`, { headers: { accept: MediaType.DockerManifest } });
    expect(Buffer.from(await res.arrayBuffer())).toEqual(image.manifest.bytes);
  });

  it('shuts down gracefully on SIGTERM and serves the same data after a restart', async () => {
    const image = await makeRandomImage();
    const dir = await layout('restart-src', image, 'keep');
    expect((await runKiln(['copy', `oci:${dir}:keep`, `${server.host}/persist/app:keep`])).code).toBe(0);
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    expect(server.stderr()).toContain('"msg":"stopped"');
    server = await startServe(['--data', data], { REGISTRY_HTTP_ADDR: '127.0.0.1:0' });
    const res = await fetch(`${server.url}/v2/persist/app/manifests/keep`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(image.manifest.bytes);
    const layer = image.layers[0];
    const blob = await fetch(`${server.url}/v2/persist/app/blobs/${layer?.desc.digest}`);
    expect(Buffer.from(await blob.arrayBuffer())).toEqual(layer?.bytes);
  });
});

describe('kiln serve data directory', () => {
  it('refuses a second server on the same data directory, and takes over after kill -9', async () => {
    const second = await runKiln(['serve', '--addr', '127.0.0.1:0', '--data', data]);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/in use by another kiln serve/);
    const image = await makeRandomImage();
    const dir = await layout('killed-src', image, 'k');
    expect((await runKiln(['copy', `oci:${dir}:k`, `${server.host}/killed/app:k`])).code).toBe(0);
    expect(await server.stop('SIGKILL')).toBeNull();
    server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
    const res = await fetch(`${server.url}/v2/killed/app/manifests/k`);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(image.manifest.bytes);
  });
});

describe('kiln serve usage', () => {
  it('documents its flags and configuration keys in --help', async () => {
    const help = await runKiln(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['--addr', '--data', '--config', 'REGISTRY_HTTP_ADDR', 'storage.filesystem.rootdirectory']) expect(help.stdout).toContain(text);
  });

  it('refuses non-loopback addresses, bad values and refused sections with exit 2, naming the problem', async () => {
    const open = await runKiln(['serve', '--addr', '0.0.0.0:0', '--data', join(work, 'never')]);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/without authentication/);
    const bad = await runKiln(['serve', '--addr', 'localhost']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--addr');
    const config = join(work, 'auth.yml');
    await writeFile(config, 'auth:\n  htpasswd:\n    realm: x\n    path: /nope\n');
    const refused = await runKiln(['serve', '--config', config]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('auth.htpasswd');
  });

  it('prints {url, data} on stdout with --format json and warns about unknown config keys', async () => {
    const config = join(work, 'distribution.yml');
    await writeFile(config, `version: 0.1\nhttp:\n  addr: 127.0.0.1:0\n  secret: x\nstorage:\n  filesystem:\n    rootdirectory: ${join(work, 'json-data')}\n`);
    const child = spawn(process.execPath, [BIN, 'serve', '--config', config, '--format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), stdout.includes('}') && resolve())));
    const printed = JSON.parse(stdout) as { url: string; data: string };
    expect(printed.data).toBe(join(work, 'json-data'));
    expect((await fetch(`${printed.url}/v2/`)).status).toBe(200);
    child.kill('SIGINT');
    await new Promise((resolve) => child.on('exit', resolve));
    expect(stderr).toContain('unknown key http.secret');
    expect(await readFile(join(work, 'json-data', 'metadata.sqlite')).then(() => true)).toBe(true);
  });
});
