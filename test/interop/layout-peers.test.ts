import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDockerArchive, openOciArchive } from '../../oci/archive/index.js';
import { digestOf } from '../../oci/digest.js';
import { openOciLayout } from '../../oci/layout/index.js';
import { MediaType } from '../../oci/media-types.js';
import { makeImageIndex, makeRandomImage, writeImageToTarget, type RandomImage } from '../support/random-image.js';
import { requirePeer } from '../support/peers.js';

const run = promisify(execFile);

/** A peer binary; missing means a broken test environment, never a skipped check. */
function peer(binary: 'skopeo' | 'umoci'): string {
  try {
    return requirePeer(binary, 'skopeo umoci');
  } catch {
    throw new Error(`${binary} is missing; install it: apt-get install -y skopeo umoci`);
  }
}

async function skopeo(...args: string[]): Promise<string> {
  // --insecure-policy: the tests judge formats, not the host's signature policy.
  const { stdout } = await run(peer('skopeo'), ['--insecure-policy', ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

async function umoci(...args: string[]): Promise<string> {
  const { stdout } = await run(peer('umoci'), args, { maxBuffer: 64 << 20 });
  return stdout;
}

let root: string;
let work: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-peers-test-'));
  work = join(root, 'work');
  await mkdir(work);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function layoutWith(image: RandomImage, tag: string): Promise<string> {
  const dir = join(root, 'layout');
  const t = await openOciLayout({ dir, mode: 'write' });
  await writeImageToTarget(t, image, tag);
  await t.close();
  return dir;
}

describe('OCI layouts and archives against skopeo and umoci', () => {
  it('the peers are installed', () => {
    expect(peer('skopeo')).toMatch(/skopeo$/);
    expect(peer('umoci')).toMatch(/umoci$/);
  });

  it('umoci and skopeo read a layout Kiln wrote', async () => {
    const image = await makeRandomImage({ layers: 2 });
    const other = await makeRandomImage({ layers: 1 });
    const dir = await layoutWith(image, 'v1');
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, other, 'v2');
    await writeImageToTarget(t, image, 'v2');
    await t.close();

    expect((await umoci('ls', '--layout', dir)).split('\n').filter(Boolean).sort()).toEqual(['v1', 'v2']);
    const stat = JSON.parse(await umoci('stat', '--image', `${dir}:v2`, '--json'));
    expect(stat.history).toHaveLength(2);
    const inspected = JSON.parse(await skopeo('inspect', `oci:${dir}:v1`));
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.desc.digest));
    const raw = await skopeo('inspect', '--raw', `oci:${dir}:v2`);
    expect(digestOf(raw)).toBe(image.manifest.digest);
  });

  it('skopeo reads a multi-platform layout Kiln wrote', async () => {
    const amd = await makeRandomImage({ layers: 1, platform: { architecture: 'amd64', os: 'linux' } });
    const arm = await makeRandomImage({ layers: 1, platform: { architecture: 'arm64', os: 'linux' } });
    const index = makeImageIndex([
      { image: amd, platform: { architecture: 'amd64', os: 'linux' } },
      { image: arm, platform: { architecture: 'arm64', os: 'linux' } },
    ]);
    const dir = join(root, 'multi');
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, amd);
    await writeImageToTarget(t, arm);
    await t.putManifest(index, 'multi');
    await t.close();
    expect(digestOf(await skopeo('inspect', '--raw', `oci:${dir}:multi`))).toBe(index.digest);
    const armInspect = JSON.parse(await skopeo('--override-arch', 'arm64', 'inspect', `oci:${dir}:multi`));
    expect(armInspect.Architecture).toBe('arm64');
    expect(armInspect.Layers).toEqual(arm.layers.map((l) => l.desc.digest));
  });

  it('skopeo copies an oci-archive Kiln wrote, and Kiln reads back what skopeo wrote', async () => {
    const image = await makeRandomImage({ layers: 2 });
    const file = join(root, 'img.tar');
    const w = await openOciArchive({ file, ref: 'v1', mode: 'write', tmpDir: work });
    await writeImageToTarget(w, image, 'v1');
    await w.close();

    const copied = join(root, 'copied');
    await skopeo('copy', '--quiet', `oci-archive:${file}:v1`, `oci:${copied}:v2`);
    const back = await openOciLayout({ dir: copied, ref: 'v2', mode: 'read' });
    expect((await back.resolve()).digest).toBe(image.manifest.digest);

    const skopeoArchive = join(root, 'skopeo.tar');
    await skopeo('copy', '--quiet', `oci:${copied}:v2`, `oci-archive:${skopeoArchive}:v3`);
    const r = await openOciArchive({ file: skopeoArchive, ref: 'v3', mode: 'read', tmpDir: work });
    expect((await r.resolve()).digest).toBe(image.manifest.digest);
    await r.close();
  });

  it('skopeo reads a docker-archive Kiln wrote, with the same manifest Kiln builds when reading it', async () => {
    const image = await makeRandomImage({ layers: 3 });
    const file = join(root, 'docker.tar');
    const w = await openDockerArchive({ file, ref: 'docker.io/library/app:1', mode: 'write', tmpDir: work });
    await writeImageToTarget(w, image, w.ref.tag);
    await w.close();

    const inspected = JSON.parse(await skopeo('inspect', `docker-archive:${file}`));
    expect(inspected.Layers).toEqual(image.layers.map((l) => l.diffId));
    expect(inspected.Architecture).toBe('amd64');
    const raw = await skopeo('inspect', '--raw', `docker-archive:${file}`);
    const manifest = JSON.parse(raw);
    expect(manifest.mediaType).toBe(MediaType.DockerManifest);
    expect(manifest.config.digest).toBe(image.configDesc.digest);
    // containers/image labels these uncompressed layers tar.gzip; Kiln says what they are (diff.tar),
    // so the manifests differ in media types only.
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    const ours = await openDockerArchive({ file, ref: 'app:1', mode: 'read', tmpDir: work });
    const oursRaw = await ours.resolve();
    const relabelled = raw.replaceAll(MediaType.DockerLayerGzip, MediaType.DockerLayer);
    expect(oursRaw.digest).toBe(digestOf(relabelled));
    await ours.close();

    const copied = join(root, 'from-docker');
    await skopeo('copy', '--quiet', `docker-archive:${file}:app:1`, `oci:${copied}:app`);
    const back = await openOciLayout({ dir: copied, ref: 'app', mode: 'read' });
    const backRaw = await back.resolve();
    expect(backRaw.kind === 'manifest' && backRaw.parsed.config.digest).toBe(image.configDesc.digest);
  });

  it('Kiln reads a docker-archive skopeo wrote', async () => {
    const image = await makeRandomImage({ layers: 2 });
    const dir = await layoutWith(image, 'v1');
    const file = join(root, 'skopeo-docker.tar');
    // skopeo writes symlinked `<id>/layer.tar` aliases and unnormalised RepoTags (docker.io/team/app:2).
    await skopeo('copy', '--quiet', `oci:${dir}:v1`, `docker-archive:${file}:team/app:2`);
    const r = await openDockerArchive({ file, mode: 'read', tmpDir: work });
    expect(await r.tags()).toEqual(['team/app:2']);
    const raw = await r.resolve();
    expect(raw.kind === 'manifest' && raw.parsed.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    expect(raw.kind === 'manifest' && raw.parsed.config.digest).toBe(image.configDesc.digest);
    const theirs = await skopeo('inspect', '--raw', `docker-archive:${file}`);
    expect(raw.digest).toBe(digestOf(theirs.replaceAll(MediaType.DockerLayerGzip, MediaType.DockerLayer)));
    await r.close();
  });
});
