import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Descriptor, Platform } from '../../oci/descriptor.js';
import { type Digest, digestOf } from '../../oci/digest.js';
import { parseManifest, type RawManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { openOciLayout } from '../../oci/layout/layout-target.js';
import type { Target } from '../../oci/target.js';

/** One layer of a test image: its descriptor, stored bytes, and the uncompressed tar with its diff_id. */
export interface RandomLayer {
  desc: Descriptor;
  bytes: Buffer;
  uncompressed: Buffer;
  diffId: Digest;
}

/** A complete, consistent single-platform image held in memory. */
export interface RandomImage {
  manifest: RawManifest;
  config: Buffer;
  configDesc: Descriptor;
  layers: RandomLayer[];
}

export interface RandomImageOptions {
  /** Number of layers (default 2). */
  layers?: number;
  /** Bytes of random file content per layer (default 1024). */
  layerSize?: number;
  /** Layer compression (default gzip); zstd frames are stored-only but valid (RFC 8878). */
  compression?: 'gzip' | 'zstd' | 'none';
  /** OCI media types (default) or Docker schema2 ones. */
  format?: 'oci' | 'docker';
  platform?: Platform;
  /** Makes the manifest a referrer of this descriptor. */
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Tar bytes of `files` (regular files and directories only), with fixed metadata. */
export async function tarBuffer(files: Array<{ name: string; data?: Buffer; type?: 'file' | 'directory' | 'symlink' | 'link'; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const f of files) {
    const type = f.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header = { name: f.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), linkname: f.linkname ?? '' };
      pack.entry(type === 'file' ? { ...header, size: f.data?.length ?? 0 } : header, type === 'file' ? (f.data ?? Buffer.alloc(0)) : Buffer.alloc(0), (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** A valid zstd stream of raw (stored) blocks: enough to exercise any zstd reader without an encoder. */
export function zstdStored(data: Buffer): Buffer {
  const BLOCK = 128 * 1024;
  // Frame header: descriptor 0x00 (no content size, no checksum), window descriptor 0x38 = 2^17 bytes.
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38])];
  let offset = 0;
  do {
    const block = data.subarray(offset, offset + BLOCK);
    offset += block.length;
    const last = offset >= data.length ? 1 : 0;
    const header = (block.length << 3) | last; // block type 0 = raw
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
  } while (offset < data.length);
  return Buffer.concat(parts);
}

/** Builds a random image with real layer tars, a config whose diff_ids match, and a manifest. */
export async function makeRandomImage(options: RandomImageOptions = {}): Promise<RandomImage> {
  const count = options.layers ?? 2;
  const compression = options.compression ?? 'gzip';
  const docker = options.format === 'docker';
  const layers: RandomLayer[] = [];
  for (let i = 0; i < count; i++) {
    const uncompressed = await tarBuffer([
      { name: `layer${i}`, type: 'directory' },
      { name: `layer${i}/random.bin`, data: randomBytes(options.layerSize ?? 1024) },
    ]);
    const bytes = compression === 'gzip' ? gzipSync(uncompressed) : compression === 'zstd' ? zstdStored(uncompressed) : uncompressed;
    const mediaType = layerMediaType(compression, docker);
    layers.push({ desc: { mediaType, digest: digestOf(bytes), size: bytes.length }, bytes, uncompressed, diffId: digestOf(uncompressed) });
  }
  const platform = options.platform ?? { architecture: 'amd64', os: 'linux' };
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `kiln test layer ${i}` })),
    }),
  );
  const configDesc: Descriptor = { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: digestOf(config), size: config.length };
  const doc = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: configDesc,
    layers: layers.map((l) => l.desc),
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const manifest = parseManifest(Buffer.from(JSON.stringify(doc, null, 2)));
  return { manifest, config, configDesc, layers };
}

/** An OCI image index over `images`, each entry with its config's platform. */
export function makeImageIndex(images: Array<{ image: RandomImage; platform: Platform }>): RawManifest {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map(({ image, platform }) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.bytes.length,
      platform,
    })),
  };
  return parseManifest(Buffer.from(JSON.stringify(doc, null, 2)));
}

/** Writes `images` and an index over them to the OCI layout `dir`, tagged `tag`; returns the index. */
export async function writeIndexLayout(dir: string, tag: string, images: Array<{ image: RandomImage; platform: Platform }>): Promise<RawManifest> {
  const index = makeImageIndex(images);
  const writer = await openOciLayout({ dir, ref: tag, mode: 'write' });
  for (const { image } of images) await writeImageToTarget(writer, image);
  await writer.putManifest(index, tag);
  await writer.close();
  return index;
}

/** Writes an image's blobs (config, layers) and then its manifest to `target`, tagged when `tag` is given. */
export async function writeImageToTarget(target: Target, image: RandomImage, tag?: string): Promise<void> {
  await target.putBlob(image.configDesc, Readable.from([image.config]));
  for (const layer of image.layers) await target.putBlob(layer.desc, Readable.from([layer.bytes]));
  await target.putManifest(image.manifest, tag);
}

function layerMediaType(compression: 'gzip' | 'zstd' | 'none', docker: boolean): string {
  if (compression === 'gzip') return docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
  if (compression === 'zstd') return MediaType.OciLayerZstd;
  return docker ? MediaType.DockerLayer : MediaType.OciLayer;
}
