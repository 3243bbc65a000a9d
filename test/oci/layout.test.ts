import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Annotation } from '../../oci/descriptor.js';
import { digestHex, digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { openOciLayout, parseLayoutSpec } from '../../oci/layout/index.js';
import { parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { rejection } from '../support/errors.js';
import { makeImageIndex, makeRandomImage, writeImageToTarget } from '../support/random-image.js';
import { readAll } from '../support/streams.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-layout-test-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('OCI image layout', () => {
  it('round-trips an image: same manifest digest, verified blobs, spec files on disk', async () => {
    const dir = join(root, 'out');
    const image = await makeRandomImage({ layers: 3, layerSize: 4096 });
    const writer = await openOciLayout({ dir, ref: 'v1', mode: 'write' });
    expect(writer.description).toBe(`oci:${dir}:v1`);
    await writeImageToTarget(writer, image, 'v1');
    await writer.close();

    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.schemaVersion).toBe(2);
    expect(index.mediaType).toBe(MediaType.OciIndex);
    expect(index.manifests).toEqual([
      { mediaType: MediaType.OciManifest, digest: image.manifest.digest, size: image.manifest.bytes.length, annotations: { [Annotation.RefName]: 'v1' } },
    ]);
    expect(existsSync(join(dir, 'blobs', 'sha256', digestHex(image.manifest.digest)))).toBe(true);
    expect(existsSync(join(dir, '.kiln-tmp'))).toBe(false);

    const reader = await openOciLayout({ dir, ref: 'v1', mode: 'read' });
    const raw = await reader.resolve();
    expect(raw.digest).toBe(image.manifest.digest);
    expect(raw.bytes.equals(image.manifest.bytes)).toBe(true);
    for (const layer of image.layers) {
      expect((await readAll(await reader.getBlob(layer.desc))).equals(layer.bytes)).toBe(true);
    }
    expect(await reader.statBlob(image.configDesc.digest)).toBe(image.config.length);
    expect(await reader.tags()).toEqual(['v1']);
    expect((await reader.getManifest('v1')).digest).toBe(image.manifest.digest);
    expect((await reader.getManifest(image.manifest.digest)).digest).toBe(image.manifest.digest);
    await reader.close();
  });

  it('tagging replaces the entry with the same ref name and keeps others', async () => {
    const dir = join(root, 'tags');
    const a = await makeRandomImage({ layers: 1 });
    const b = await makeRandomImage({ layers: 1 });
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, a, 'v1');
    await writeImageToTarget(t, a, 'stable');
    await writeImageToTarget(t, b, 'v1');
    const { manifests } = await t.layout.readIndex();
    expect(manifests.map((d) => [d.annotations?.[Annotation.RefName], d.digest])).toEqual([
      ['stable', a.manifest.digest],
      ['v1', b.manifest.digest],
    ]);
    expect((await t.getManifest('v1')).digest).toBe(b.manifest.digest);
    await t.layout.tag('latest', a.manifest.digest);
    expect(await t.tags()).toEqual(['stable', 'v1', 'latest']);
    await expect(t.putManifest(a.manifest, 'bad tag!')).rejects.toMatchObject({ code: 'REFERENCE_INVALID' });
    await t.close();
  });

  it('finds the only image without a tag, and says how many there are otherwise', async () => {
    const dir = join(root, 'untagged');
    const [a, b] = [await makeRandomImage(), await makeRandomImage()];
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, a);
    await writeImageToTarget(t, a);
    expect((await t.resolve()).digest).toBe(a.manifest.digest);
    await writeImageToTarget(t, b);
    const err = await rejection(t.resolve());
    expect(err.code).toBe('MANIFEST_UNKNOWN');
    expect(err.message).toMatch(/holds 2 images/);
    const byDigest = await openOciLayout({ dir, ref: `@${b.manifest.digest}`, mode: 'read' });
    expect((await byDigest.resolve()).digest).toBe(b.manifest.digest);
    expect((await rejection((await openOciLayout({ dir, ref: 'nope', mode: 'read' })).resolve())).message).toMatch(/no image tagged "nope"/);
    await t.close();
  });

  it('lists an index, not its children, once the index is stored', async () => {
    const dir = join(root, 'multi');
    const amd = await makeRandomImage({ platform: { architecture: 'amd64', os: 'linux' } });
    const arm = await makeRandomImage({ platform: { architecture: 'arm64', os: 'linux' } });
    const index = makeImageIndex([
      { image: amd, platform: { architecture: 'amd64', os: 'linux' } },
      { image: arm, platform: { architecture: 'arm64', os: 'linux' } },
    ]);
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, amd);
    await writeImageToTarget(t, arm);
    await t.putManifest(index, 'multi');
    const { manifests } = await t.layout.readIndex();
    expect(manifests.map((d) => d.digest)).toEqual([index.digest]);
    expect((await t.resolve()).kind).toBe('index');
    expect((await t.getManifest(arm.manifest.digest)).digest).toBe(arm.manifest.digest);
    await t.close();
  });

  it('rejects a malformed index.json with LAYOUT_INVALID naming the file and the problem', async () => {
    const dir = join(root, 'bad');
    await (await openOciLayout({ dir, mode: 'write' })).close();
    const cases: Array<[string, RegExp]> = [
      ['{not json', /index\.json is not valid JSON/],
      ['[]', /index\.json must be a JSON object/],
      ['{"schemaVersion":1,"manifests":[]}', /index\.json: schemaVersion: must be 2/],
      ['{"schemaVersion":2}', /index\.json: manifests: required array of descriptors/],
      [`{"schemaVersion":2,"manifests":[{"mediaType":"${MediaType.OciManifest}","digest":"sha256:abc","size":1}]}`, /index\.json: manifests\[0\]\.digest: invalid digest "sha256:abc"/],
      [`{"schemaVersion":2,"manifests":[{"mediaType":"${MediaType.OciManifest}","digest":"${digestOf('x')}","size":-1}]}`, /manifests\[0\]\.size: required non-negative integer/],
    ];
    for (const [content, message] of cases) {
      await writeFile(join(dir, 'index.json'), content);
      const err = await rejection(openOciLayout({ dir, mode: 'read' }));
      expect(err.code).toBe('LAYOUT_INVALID');
      expect(err.message).toContain(join(dir, 'index.json'));
      expect(err.message).toMatch(message);
    }
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    expect((await rejection(openOciLayout({ dir, mode: 'read' }))).message).toMatch(/oci-layout: imageLayoutVersion: must be "1\.0\.0", got "2\.0\.0"/);
  });

  it('refuses to read a missing layout or to write into a non-layout directory', async () => {
    expect((await rejection(openOciLayout({ dir: join(root, 'absent'), mode: 'read' }))).code).toBe('LAYOUT_INVALID');
    const other = join(root, 'other');
    await mkdir(other);
    await writeFile(join(other, 'notes.txt'), 'hi');
    const err = await rejection(openOciLayout({ dir: other, mode: 'write' }));
    expect(err.code).toBe('LAYOUT_INVALID');
    expect(err.message).toMatch(/oci-layout: missing/);
  });

  it('writes a new layout\'s index.json and oci-layout once, at the first index update: never visible empty or partial', async () => {
    const dir = join(root, 'deferred');
    const image = await makeRandomImage({ layers: 2 });
    const t = await openOciLayout({ dir, ref: 'v1', mode: 'write' });
    expect(await readdir(dir)).toEqual(['blobs']);
    expect(await t.tags()).toEqual([]);
    for (const layer of image.layers) await t.putBlob(layer.desc, Readable.from([layer.bytes]));
    await t.putBlob(image.configDesc, Readable.from([image.config]));
    // Blobs are in, the image is not tagged yet: no reader takes the directory for a layout.
    expect(existsSync(join(dir, 'index.json'))).toBe(false);
    const early = await rejection(openOciLayout({ dir, mode: 'read' }));
    expect(early.code).toBe('LAYOUT_INVALID');
    expect(early.message).toMatch(/no oci-layout/);
    await t.putManifest(image.manifest, 'v1');
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    await t.close();
    const r = await openOciLayout({ dir, ref: 'v1', mode: 'read' });
    expect((await r.resolve()).digest).toBe(image.manifest.digest);
  });

  it('completes a new layout left with blobs only (a copy that stopped midway), keeping its blobs', async () => {
    const dir = join(root, 'resumed');
    const image = await makeRandomImage({ layers: 1 });
    const layer = image.layers[0]!;
    const first = await openOciLayout({ dir, mode: 'write' });
    await first.putBlob(layer.desc, Readable.from([layer.bytes]));
    // No close(): as after a crash, the directory has blobs/ and no spec files.
    const again = await openOciLayout({ dir, mode: 'write' });
    expect(await again.statBlob(layer.desc.digest)).toBe(layer.bytes.length);
    await writeImageToTarget(again, image, 'v1');
    await again.close();
    expect((await (await openOciLayout({ dir, ref: 'v1', mode: 'read' })).resolve()).digest).toBe(image.manifest.digest);
  });

  it('two writers opening the same new layout keep both tags', async () => {
    const dir = join(root, 'two-writers');
    const [a, b] = await Promise.all([makeRandomImage({ layers: 1 }), makeRandomImage({ layers: 1 })]);
    const first = await openOciLayout({ dir, mode: 'write' });
    const second = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(first, a, 'a');
    await writeImageToTarget(second, b, 'b');
    await Promise.all([first.close(), second.close()]);
    expect(await (await openOciLayout({ dir, mode: 'read' })).tags()).toEqual(['a', 'b']);
  });

  it('closing a new layout nothing was written to leaves an empty, valid layout', async () => {
    const dir = join(root, 'empty');
    await (await openOciLayout({ dir, mode: 'write' })).close();
    expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
    expect(await (await openOciLayout({ dir, mode: 'read' })).tags()).toEqual([]);
  });

  it('rejects a corrupt blob and never makes it visible', async () => {
    const dir = join(root, 'corrupt');
    const image = await makeRandomImage({ layers: 1 });
    const layer = image.layers[0]!;
    const t = await openOciLayout({ dir, mode: 'write' });
    const tampered = Buffer.from(layer.bytes);
    tampered[tampered.length - 1]! ^= 0xff;
    expect((await rejection(t.putBlob(layer.desc, Readable.from([tampered])))).code).toBe('DIGEST_MISMATCH');
    expect((await rejection(t.putBlob(layer.desc, Readable.from([layer.bytes.subarray(1)])))).code).toBe('SIZE_MISMATCH');
    expect(await t.statBlob(layer.desc.digest)).toBeUndefined();
    expect(await readdir(join(dir, '.kiln-tmp'))).toEqual([]);
    const forged = { ...image.manifest, digest: digestOf('something else') };
    expect((await rejection(t.putManifest(forged, 'x'))).code).toBe('DIGEST_MISMATCH');
    await t.close();
    expect(existsSync(join(dir, '.kiln-tmp'))).toBe(false);
    expect(await readdir(join(dir, 'blobs'))).toEqual([]);
  });

  it('fails reading a blob altered on disk', async () => {
    const dir = join(root, 'altered');
    const image = await makeRandomImage({ layers: 1 });
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, image, 'v1');
    const layer = image.layers[0]!;
    const tampered = Buffer.from(layer.bytes);
    tampered[10]! ^= 0xff;
    await writeFile(t.layout.blobs.path(layer.desc.digest), tampered);
    const err = await readAll(await t.getBlob(layer.desc)).then(
      () => undefined,
      (e: unknown) => e as KilnError,
    );
    expect(err?.code).toBe('DIGEST_MISMATCH');
    await writeFile(t.layout.blobs.path(image.manifest.digest), Buffer.concat([image.manifest.bytes, Buffer.from(' ')]));
    expect((await rejection(t.resolve())).code).toBe('DIGEST_MISMATCH');
    await t.close();
  });

  it('is read-only when opened for reading', async () => {
    const dir = join(root, 'ro');
    const image = await makeRandomImage({ layers: 1 });
    const w = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(w, image, 'v1');
    const r = await openOciLayout({ dir, mode: 'read' });
    expect((await rejection(r.putBlob(image.configDesc, Readable.from([image.config])))).code).toBe('USAGE');
    expect((await rejection(r.putManifest(image.manifest, 'v2'))).code).toBe('USAGE');
  });

  it('finds referrers listed in index.json and under the sha256-<hex> tag schema', async () => {
    const dir = join(root, 'referrers');
    const image = await makeRandomImage({ layers: 1 });
    const subject = { mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.bytes.length };
    const sig = await makeRandomImage({ layers: 1, subject, artifactType: 'application/vnd.example.sig', annotations: { a: 'b' } });
    const sbom = await makeRandomImage({ layers: 1, subject, artifactType: 'application/vnd.example.sbom' });
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, image, 'v1');
    await writeImageToTarget(t, sig);
    await writeImageToTarget(t, sbom);
    const fallback = makeImageIndex([{ image: sbom, platform: { architecture: 'amd64', os: 'linux' } }]);
    await t.putManifest(fallback, image.manifest.digest.replace(':', '-'));

    const all = await t.referrers(image.manifest.digest);
    expect(all.map((d) => d.digest).sort()).toEqual([sig.manifest.digest, sbom.manifest.digest].sort());
    const sigDesc = all.find((d) => d.digest === sig.manifest.digest);
    expect(sigDesc).toMatchObject({ artifactType: 'application/vnd.example.sig', annotations: { a: 'b' }, mediaType: MediaType.OciManifest });
    expect((await t.referrers(image.manifest.digest, { artifactType: 'application/vnd.example.sbom' })).map((d) => d.digest)).toEqual([sbom.manifest.digest]);
    expect(await t.referrers(sig.manifest.digest)).toEqual([]);
    const entry = (await t.layout.readIndex()).manifests.find((d) => d.digest === sig.manifest.digest);
    expect(entry?.artifactType).toBe('application/vnd.example.sig');
  });

  it('keeps every tag when manifests are put concurrently', async () => {
    const dir = join(root, 'concurrent');
    const images = await Promise.all(Array.from({ length: 8 }, () => makeRandomImage({ layers: 1, layerSize: 64 })));
    const t = await openOciLayout({ dir, mode: 'write' });
    await Promise.all(images.map((img, i) => writeImageToTarget(t, img, `t${i}`)));
    expect((await t.tags()).sort()).toEqual(images.map((_, i) => `t${i}`).sort());
    await t.close();
  });

  it('keeps manifest bytes exactly (digest of the bytes, not of a re-serialisation)', async () => {
    const dir = join(root, 'bytes');
    const image = await makeRandomImage({ layers: 1 });
    const odd = parseManifest(Buffer.from(`  ${image.manifest.bytes.toString()}\n\n`));
    const t = await openOciLayout({ dir, mode: 'write' });
    await writeImageToTarget(t, { ...image, manifest: odd }, 'odd');
    const back = await (await openOciLayout({ dir, ref: 'odd', mode: 'read' })).resolve();
    expect(back.digest).toBe(odd.digest);
    expect(back.digest).not.toBe(image.manifest.digest);
  });

  it('parses oci:DIR[:tag][@digest] the way skopeo splits it', () => {
    const d = digestOf('x');
    expect(parseLayoutSpec('out')).toEqual({ path: 'out', ref: { tag: undefined, digest: undefined } });
    expect(parseLayoutSpec('out:v1')).toEqual({ path: 'out', ref: { tag: 'v1', digest: undefined } });
    expect(parseLayoutSpec('out:app:1')).toEqual({ path: 'out', ref: { tag: 'app:1', digest: undefined } });
    expect(parseLayoutSpec(`/a/b@${d}`)).toEqual({ path: '/a/b', ref: { tag: undefined, digest: d } });
    expect(() => parseLayoutSpec(':v1')).toThrow(KilnError);
  });
});
