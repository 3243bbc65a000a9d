import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ARCHIVE_LIMITS, openDockerArchive, openLocalTarget, openOciArchive, readTarMembers } from '../../oci/archive/index.js';
import { decompressStream, detectCompression, gzipStream } from '../../oci/compression.js';
import { Annotation } from '../../oci/descriptor.js';
import { digestHex } from '../../oci/digest.js';
import { openOciLayout } from '../../oci/layout/index.js';
import { MediaType } from '../../oci/media-types.js';
import type { Target } from '../../oci/target.js';
import { rejection } from '../support/errors.js';
import { makeImageIndex, makeRandomImage, tarBuffer, writeImageToTarget, zstdStored, type RandomImage } from '../support/random-image.js';
import { readAll } from '../support/streams.js';

let root: string;
let work: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-archive-test-'));
  work = join(root, 'work');
  await mkdir(work);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Files in `root` other than the work dir, and whatever is left in the work dir. */
async function leftovers(): Promise<{ files: string[]; work: string[] }> {
  return { files: (await readdir(root)).filter((f) => f !== 'work').sort(), work: await readdir(work) };
}

/** A docker-archive written by Kiln for `image`, closed. */
async function dockerArchiveOf(image: RandomImage, file: string, ref?: string): Promise<void> {
  const t = await openDockerArchive({ file, ref, mode: 'write', tmpDir: work });
  await writeImageToTarget(t, image, t.ref.tag);
  await t.close();
}

async function configDiffIds(target: Target): Promise<string[]> {
  const raw = await target.resolve();
  if (raw.kind !== 'manifest') throw new Error('expected an image manifest');
  const config = JSON.parse((await readAll(await target.getBlob(raw.parsed.config))).toString());
  return config.rootfs.diff_ids;
}

describe('compression', () => {
  it('detects by magic and decompresses gzip and zstd as streams', async () => {
    const data = Buffer.alloc(300_000, 'kiln');
    const gz = gzipSync(data);
    const zst = zstdStored(data);
    expect(detectCompression(gz)).toBe('gzip');
    expect(detectCompression(zst)).toBe('zstd');
    expect(detectCompression(data)).toBe('none');
    expect(detectCompression(Buffer.alloc(0))).toBe('none');
    // Small chunks make the zstd reader cross block and header boundaries.
    const chunks = (b: Buffer): Buffer[] => Array.from({ length: Math.ceil(b.length / 1000) }, (_, i) => b.subarray(i * 1000, i * 1000 + 1000));
    expect((await readAll(Readable.from(chunks(zst)).pipe(decompressStream('zstd')))).equals(data)).toBe(true);
    expect((await readAll(Readable.from(chunks(gz)).pipe(decompressStream(MediaType.OciLayerGzip)))).equals(data)).toBe(true);
    expect((await readAll(Readable.from([data]).pipe(decompressStream(MediaType.OciLayer)))).equals(data)).toBe(true);
    const regz = await readAll(Readable.from([data]).pipe(gzipStream()));
    expect(detectCompression(regz)).toBe('gzip');
  });

  it('fails with a typed error on corrupt or truncated data', async () => {
    const zst = zstdStored(Buffer.alloc(1000, 1));
    const truncated = readAll(Readable.from([zst.subarray(0, zst.length - 10)]).pipe(decompressStream('zstd')));
    expect((await rejection(truncated)).code).toBe('VALIDATION');
    const badGzip = readAll(Readable.from([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4])]).pipe(decompressStream('gzip')));
    expect((await rejection(badGzip)).code).toBe('VALIDATION');
  });
});

describe('oci-archive', () => {
  it('round-trips an image with the same manifest digest and leaves no temp files', async () => {
    const file = join(root, 'img.tar');
    const image = await makeRandomImage({ layers: 2, layerSize: 2048 });
    const w = await openOciArchive({ file, ref: 'v1', mode: 'write', tmpDir: work });
    expect(w.description).toBe(`oci-archive:${file}:v1`);
    await writeImageToTarget(w, image, 'v1');
    expect(existsSync(file)).toBe(false);
    await w.close();
    expect(await leftovers()).toEqual({ files: ['img.tar'], work: [] });

    const r = await openOciArchive({ file, ref: 'v1', mode: 'read', tmpDir: work });
    expect((await r.resolve()).digest).toBe(image.manifest.digest);
    expect(await r.tags()).toEqual(['v1']);
    for (const layer of image.layers) expect((await readAll(await r.getBlob(layer.desc))).equals(layer.bytes)).toBe(true);
    await r.close();
    expect(await leftovers()).toEqual({ files: ['img.tar'], work: [] });
  });

  it('reads a gzip-compressed archive too', async () => {
    const file = join(root, 'img.tar');
    const image = await makeRandomImage({ layers: 1 });
    const w = await openOciArchive({ file, ref: 'v1', mode: 'write', tmpDir: work });
    await writeImageToTarget(w, image, 'v1');
    await w.close();
    await writeFile(join(root, 'img.tar.gz'), gzipSync(await readFile(file)));
    const r = await openOciArchive({ file: join(root, 'img.tar.gz'), ref: 'v1', mode: 'read', tmpDir: work });
    expect((await r.resolve()).digest).toBe(image.manifest.digest);
    await r.close();
  });

  it('leaves nothing behind when discarded, or when nothing was written', async () => {
    const file = join(root, 'img.tar');
    const w = await openOciArchive({ file, mode: 'write', tmpDir: work });
    await writeImageToTarget(w, await makeRandomImage());
    await w.close({ discard: true });
    expect(await leftovers()).toEqual({ files: [], work: [] });
    const empty = await openOciArchive({ file, mode: 'write', tmpDir: work });
    expect((await rejection(empty.close())).message).toMatch(/nothing was written/);
    expect(await leftovers()).toEqual({ files: [], work: [] });
  });

  it('keeps an existing archive intact when the new one cannot be written', async () => {
    const file = join(root, 'img.tar');
    await writeFile(file, 'previous');
    const w = await openOciArchive({ file, mode: 'write', tmpDir: work });
    await writeImageToTarget(w, await makeRandomImage());
    await rm(root + '/work', { recursive: true, force: true });
    await expect(w.close()).rejects.toThrow();
    await mkdir(work);
    expect(await readFile(file, 'utf8')).toBe('previous');
    expect(await leftovers()).toEqual({ files: ['img.tar'], work: [] });
  });

  it('rejects unsafe members before storing anything', async () => {
    const cases: Array<[string, Parameters<typeof tarBuffer>[0], string, RegExp]> = [
      ['traversal', [{ name: '../evil', data: Buffer.from('x') }], 'UNSAFE_PATH', /escapes the archive/],
      ['nested traversal', [{ name: 'blobs/../../evil', data: Buffer.from('x') }], 'UNSAFE_PATH', /escapes the archive/],
      ['absolute', [{ name: '/etc/evil', data: Buffer.from('x') }], 'UNSAFE_PATH', /absolute path/],
      ['symlink', [{ name: 'index.json', type: 'symlink', linkname: '/etc/passwd' }], 'UNSAFE_PATH', /symlink/],
      ['inner symlink', [{ name: 'blobs/sha256/x', type: 'symlink', linkname: 'y' }], 'UNSAFE_PATH', /is a symlink/],
      ['hard link', [{ name: 'index.json', type: 'link', linkname: 'oci-layout' }], 'UNSAFE_PATH', /hard link/],
    ];
    for (const [label, members, code, message] of cases) {
      const file = join(root, `${label}.tar`);
      await writeFile(file, await tarBuffer([{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }, ...members]));
      const err = await rejection(openOciArchive({ file, mode: 'read', tmpDir: work }));
      expect([label, err.code]).toEqual([label, code]);
      expect(err.message).toMatch(message);
      expect(await readdir(work)).toEqual([]);
    }
    expect(existsSync(join(root, 'evil'))).toBe(false);
  });

  it('rejects a blob whose bytes do not match its name, and oversized members', async () => {
    const image = await makeRandomImage({ layers: 1, layerSize: 4096 });
    const file = join(root, 'img.tar');
    const w = await openOciArchive({ file, ref: 'v1', mode: 'write', tmpDir: work });
    await writeImageToTarget(w, image, 'v1');
    await w.close();
    const layer = image.layers[0]!;
    const tampered = Buffer.from(layer.bytes);
    tampered[20]! ^= 0xff;
    const bad = join(root, 'bad.tar');
    await writeFile(bad, await tarBuffer([
      { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: 'index.json', data: Buffer.from('{"schemaVersion":2,"manifests":[]}') },
      { name: `blobs/sha256/${digestHex(layer.desc.digest)}`, data: tampered },
    ]));
    expect((await rejection(openOciArchive({ file: bad, mode: 'read', tmpDir: work }))).code).toBe('DIGEST_MISMATCH');
    const big = await rejection(openOciArchive({ file, mode: 'read', tmpDir: work, limits: { maxMemberBytes: 1024 } }));
    expect(big.code).toBe('TOO_LARGE');
    expect(big.message).toMatch(/over the 1024-byte limit/);
    const json = await rejection(openOciArchive({ file, mode: 'read', tmpDir: work, limits: { maxJsonBytes: 10 } }));
    expect(json.code).toBe('TOO_LARGE');
    expect(await readdir(work)).toEqual([]);
  });

  it('names the archive when index.json is malformed or missing', async () => {
    const file = join(root, 'bad.tar');
    await writeFile(file, await tarBuffer([
      { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
      { name: 'index.json', data: Buffer.from('{"schemaVersion":2,"manifests":{}}') },
    ]));
    const err = await rejection(openOciArchive({ file, mode: 'read', tmpDir: work }));
    expect(err.code).toBe('LAYOUT_INVALID');
    expect(err.message).toBe(`${file}:index.json: manifests: required array of descriptors, got {}`);
    await writeFile(file, await tarBuffer([{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }]));
    expect((await rejection(openOciArchive({ file, mode: 'read', tmpDir: work }))).message).toMatch(/has no index\.json/);
    await writeFile(file, 'this is not a tar archive at all, just some text that is long enough'.repeat(20));
    expect((await rejection(openOciArchive({ file, mode: 'read', tmpDir: work }))).code).toBe('ARCHIVE_INVALID');
    expect((await rejection(openOciArchive({ file: join(root, 'absent.tar'), mode: 'read', tmpDir: work }))).code).toBe('NOT_FOUND');
    expect(await readdir(work)).toEqual([]);
  });
});

describe('docker-archive', () => {
  it('round-trips: same config and diff_ids, Docker schema2 manifest with uncompressed layers', async () => {
    const file = join(root, 'img.tar');
    const image = await makeRandomImage({ layers: 3, layerSize: 3000 });
    await dockerArchiveOf(image, file, 'docker.io/library/app:1');
    expect(await leftovers()).toEqual({ files: ['img.tar'], work: [] });

    const r = await openDockerArchive({ file, mode: 'read', tmpDir: work });
    expect(await r.tags()).toEqual(['app:1']);
    const raw = await r.resolve();
    if (raw.kind !== 'manifest') throw new Error('expected an image manifest');
    expect(raw.mediaType).toBe(MediaType.DockerManifest);
    expect(raw.parsed.config).toMatchObject({ mediaType: MediaType.DockerConfig, digest: image.configDesc.digest, size: image.config.length });
    expect(raw.parsed.layers.map((l) => l.mediaType)).toEqual(image.layers.map(() => MediaType.DockerLayer));
    expect(raw.parsed.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    expect(await configDiffIds(r)).toEqual(image.layers.map((l) => l.diffId));
    for (const [i, layer] of raw.parsed.layers.entries()) {
      expect((await readAll(await r.getBlob(layer))).equals(image.layers[i]!.uncompressed)).toBe(true);
    }
    await r.close();
    const byTag = await openDockerArchive({ file, ref: 'app:1', mode: 'read', tmpDir: work });
    expect((await byTag.resolve()).digest).toBe(raw.digest);
    await byTag.close();
    expect(await readdir(work)).toEqual([]);
  });

  it('writes the classic docker save layout', async () => {
    const file = join(root, 'img.tar');
    const image = await makeRandomImage({ layers: 2, compression: 'none', format: 'docker' });
    await dockerArchiveOf(image, file, 'localhost:5000/team/app');
    const extracted = join(root, 'x');
    await mkdir(extracted);
    const names: string[] = [];
    await readTarMembers(file, { limits: DEFAULT_ARCHIVE_LIMITS }, async (m) => {
      names.push(m.kind === 'directory' ? `${m.name}/` : m.name);
      if (m.kind === 'file') await writeFile(join(extracted, m.name.replace(/\//g, '_')), await readAll(m.stream));
    });
    const configName = `${digestHex(image.configDesc.digest)}.json`;
    const layerNames = image.layers.map((l) => `${digestHex(l.diffId)}/layer.tar`);
    expect(names.sort()).toEqual(['manifest.json', 'repositories', configName, ...image.layers.map((l) => `${digestHex(l.diffId)}/`), ...layerNames].sort());
    expect(JSON.parse(await readFile(join(extracted, 'manifest.json'), 'utf8'))).toEqual([
      { Config: configName, RepoTags: ['localhost:5000/team/app:latest'], Layers: layerNames },
    ]);
    expect(JSON.parse(await readFile(join(extracted, 'repositories'), 'utf8'))).toEqual({
      'localhost:5000/team/app': { latest: digestHex(image.layers[1]!.diffId) },
    });
    expect((await readFile(join(extracted, configName))).equals(image.config)).toBe(true);
  });

  it('decompresses zstd layers when writing', async () => {
    const file = join(root, 'img.tar');
    const image = await makeRandomImage({ layers: 2, compression: 'zstd' });
    await dockerArchiveOf(image, file, 'app:zstd');
    const r = await openDockerArchive({ file, mode: 'read', tmpDir: work });
    const raw = await r.resolve();
    expect(raw.kind === 'manifest' && raw.parsed.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.diffId));
    await r.close();
  });

  it('refuses an index, a second image or a referrer, and leaves nothing on discard', async () => {
    const file = join(root, 'img.tar');
    const a = await makeRandomImage({ layers: 1 });
    const b = await makeRandomImage({ layers: 1 });
    const index = makeImageIndex([{ image: a, platform: { architecture: 'amd64', os: 'linux' } }]);
    const w = await openDockerArchive({ file, ref: 'app:1', mode: 'write', tmpDir: work });
    const err = await rejection(w.putManifest(index, 'app:1'));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toMatch(/holds one image \(a single platform\)/);
    await writeImageToTarget(w, a, 'app:1');
    expect((await rejection(writeImageToTarget(w, b, 'app:1'))).message).toMatch(/holds one image; already got/);
    const ref = await makeRandomImage({ subject: { mediaType: a.manifest.mediaType, digest: a.manifest.digest, size: a.manifest.bytes.length } });
    expect((await rejection(writeImageToTarget(w, ref))).message).toMatch(/cannot hold referrers/);
    await w.close({ discard: true });
    expect(await leftovers()).toEqual({ files: [], work: [] });
    await expect(openDockerArchive({ file, ref: 'app@' + a.manifest.digest, mode: 'write', tmpDir: work })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('reads the newer blobs/sha256 form with compressed layers, several images, and selects by tag or @N', async () => {
    const a = await makeRandomImage({ layers: 2, compression: 'gzip' });
    const b = await makeRandomImage({ layers: 1, compression: 'none' });
    const blob = (d: string): string => `blobs/sha256/${digestHex(d as never)}`;
    const manifestJson = [a, b].map((img, i) => ({
      Config: blob(img.configDesc.digest),
      RepoTags: i === 0 ? ['app:a', 'docker.io/library/app:again'] : null,
      Layers: img.layers.map((l) => blob(l.desc.digest)),
    }));
    const file = join(root, 'new.tar');
    await writeFile(file, await tarBuffer([
      { name: 'blobs', type: 'directory' },
      ...[a, b].flatMap((img) => [
        { name: blob(img.configDesc.digest), data: img.config },
        ...img.layers.map((l) => ({ name: blob(l.desc.digest), data: l.bytes })),
      ]),
      { name: 'manifest.json', data: Buffer.from(JSON.stringify(manifestJson)) },
      { name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') },
    ]));
    const err = await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work }));
    expect(err.message).toMatch(/holds 2 images; name one .* \(it has: @0 \(app:a, app:again\), @1\)/);
    const byTag = await openDockerArchive({ file, ref: 'app:again', mode: 'read', tmpDir: work });
    expect(await configDiffIds(byTag)).toEqual(a.layers.map((l) => l.diffId));
    const raw = await byTag.resolve();
    expect(raw.kind === 'manifest' && raw.parsed.layers.map((l) => l.digest)).toEqual(a.layers.map((l) => l.diffId));
    await byTag.close();
    const second = await openDockerArchive({ file, ref: '@1', mode: 'read', tmpDir: work });
    expect(await configDiffIds(second)).toEqual(b.layers.map((l) => l.diffId));
    await second.close();
    expect((await rejection(openDockerArchive({ file, ref: '@2', mode: 'read', tmpDir: work }))).code).toBe('NOT_FOUND');
    expect((await rejection(openDockerArchive({ file, ref: 'app:zzz', mode: 'read', tmpDir: work }))).code).toBe('MANIFEST_UNKNOWN');
    expect(await readdir(work)).toEqual([]);
  });

  it('accepts in-archive symlink aliases (as containers/image writes) but not escaping ones', async () => {
    const img = await makeRandomImage({ layers: 1, compression: 'none' });
    const layer = img.layers[0]!;
    const configName = `${digestHex(img.configDesc.digest)}.json`;
    const manifestJson = (layerPath: string): Buffer => Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['x:1'], Layers: [layerPath] }]));
    const file = join(root, 'links.tar');
    await writeFile(file, await tarBuffer([
      { name: `${digestHex(layer.diffId)}.tar`, data: layer.bytes },
      { name: 'abc', type: 'directory' },
      { name: 'abc/layer.tar', type: 'symlink', linkname: `../${digestHex(layer.diffId)}.tar` },
      { name: configName, data: img.config },
      { name: 'manifest.json', data: manifestJson('abc/layer.tar') },
    ]));
    const r = await openDockerArchive({ file, mode: 'read', tmpDir: work });
    expect(await configDiffIds(r)).toEqual([layer.diffId]);
    await r.close();
    await writeFile(file, await tarBuffer([
      { name: 'abc/layer.tar', type: 'symlink', linkname: '../../../etc/passwd' },
      { name: configName, data: img.config },
      { name: 'manifest.json', data: manifestJson('abc/layer.tar') },
    ]));
    expect((await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work }))).code).toBe('UNSAFE_PATH');
    expect(await readdir(work)).toEqual([]);
  });

  it('rejects a tampered config or layer and traversal in manifest.json', async () => {
    const img = await makeRandomImage({ layers: 1, compression: 'none' });
    const layer = img.layers[0]!;
    const configName = `${digestHex(img.configDesc.digest)}.json`;
    const build = (config: Buffer, layerBytes: Buffer, layerPath = 'l/layer.tar'): Promise<Buffer> =>
      tarBuffer([
        { name: 'l/layer.tar', data: layerBytes },
        { name: configName, data: config },
        { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: [], Layers: [layerPath] }])) },
      ]);
    const file = join(root, 'bad.tar');
    await writeFile(file, await build(Buffer.concat([img.config, Buffer.from(' ')]), layer.bytes));
    expect((await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work }))).code).toBe('DIGEST_MISMATCH');
    const tampered = Buffer.from(layer.bytes);
    tampered[600]! ^= 0xff;
    await writeFile(file, await build(img.config, tampered));
    const err = await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work }));
    expect(err.code).toBe('DIGEST_MISMATCH');
    expect(err.message).toMatch(/diff_id/);
    await writeFile(file, await build(img.config, layer.bytes, '../../l/layer.tar'));
    expect((await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work }))).code).toBe('ARCHIVE_INVALID');
    await writeFile(file, await build(img.config, layer.bytes, 'l/layer.tar'));
    expect((await rejection(openDockerArchive({ file, mode: 'read', tmpDir: work, limits: { maxJsonBytes: 100 } }))).code).toBe('TOO_LARGE');
    expect(await readdir(work)).toEqual([]);
  });

  it('copies from a layout into a docker-archive with the layout tag ignored unless it is name:tag', async () => {
    const image = await makeRandomImage({ layers: 1 });
    const file = join(root, 'img.tar');
    const w = await openDockerArchive({ file, mode: 'write', tmpDir: work });
    await writeImageToTarget(w, image, 'v1');
    await w.close();
    const r = await openDockerArchive({ file, mode: 'read', tmpDir: work });
    expect(await r.tags()).toEqual([]);
    expect(await configDiffIds(r)).toEqual(image.layers.map((l) => l.diffId));
    await r.close();
  });
});

describe('openLocalTarget', () => {
  it('dispatches oci:, oci-archive: and docker-archive: specs', async () => {
    const image = await makeRandomImage({ layers: 1 });
    const dir = join(root, 'layout');
    const layout = await openLocalTarget(`oci:${dir}:v1`, { mode: 'write' });
    await writeImageToTarget(layout, image, layout.ref.tag);
    await layout.close();
    const oa = await openLocalTarget(`oci-archive:${join(root, 'a.tar')}:v2`, { mode: 'write', tmpDir: work });
    await writeImageToTarget(oa, image, oa.ref.tag);
    await oa.close();
    const da = await openLocalTarget(`docker-archive:${join(root, 'd.tar')}:app:3`, { mode: 'write', tmpDir: work });
    expect(da.ref).toEqual({ tag: 'app:3' });
    await writeImageToTarget(da, image, da.ref.tag);
    await da.close();

    expect((await (await openOciLayout({ dir, ref: 'v1', mode: 'read' })).resolve()).digest).toBe(image.manifest.digest);
    const back = await openLocalTarget(`oci-archive:${join(root, 'a.tar')}:v2`, { mode: 'read', tmpDir: work });
    expect((await back.resolve()).digest).toBe(image.manifest.digest);
    await back.close();
    const dback = await openLocalTarget(`docker-archive:${join(root, 'd.tar')}`, { mode: 'read', tmpDir: work });
    expect(await dback.tags()).toEqual(['app:3']);
    await dback.close();
    const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(idx.manifests[0].annotations[Annotation.RefName]).toBe('v1');
    await expect(openLocalTarget('ftp:x', { mode: 'read' })).rejects.toMatchObject({ code: 'UNSUPPORTED_TRANSPORT' });
  });
});
