import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestHex, digestOf, type Digest } from '../../oci/digest.js';
import { parseManifest } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { openTarget } from '../../oci/transports.js';
import { analyze, type AnalysisResult } from '../../analyzer/analyze.js';
import { writeImageToTarget, zstdStored, type RandomImage } from '../support/random-image.js';

/** One tar entry of a test layer: a file of `size` bytes (filled with `fill`) unless another type is given. */
export interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  size?: number;
  data?: Buffer;
  linkname?: string;
  mode?: number;
}

/** A test layer and the history entry that made it. */
export interface LayerSpec {
  entries: Entry[];
  createdBy?: string;
  compression?: 'gzip' | 'zstd' | 'none';
  /** Uncompressed layer bytes to use instead of a tar of `entries` (for broken layers). */
  raw?: Buffer;
}

/** Knobs for broken images. */
export interface ImageOptions {
  /** Replace the config's history (default: one entry per layer from `createdBy`). */
  history?: Array<{ created_by?: string; empty_layer?: boolean }>;
  /** Replace the config's diff_ids. */
  diffIds?: Digest[];
}

/** The tar bytes of `entries`, in order, with fixed metadata (size = the given size, contents `x`). */
export async function layerTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = type === 'file' ? (e.data ?? Buffer.alloc(e.size ?? 0, 'x')) : Buffer.alloc(0);
    const header = { name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(0), linkname: e.linkname ?? '', size: data.length };
    await new Promise<void>((resolve, reject) => pack.entry(header, data, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** An in-memory image of `layers` (manifest, config, blobs). */
export async function makeImage(layers: LayerSpec[], options: ImageOptions = {}): Promise<RandomImage> {
  const built = [];
  for (const spec of layers) {
    const uncompressed = spec.raw ?? (await layerTar(spec.entries));
    const compression = spec.compression ?? 'gzip';
    const bytes = compression === 'gzip' ? gzipSync(uncompressed) : compression === 'zstd' ? zstdStored(uncompressed) : uncompressed;
    const mediaType = compression === 'gzip' ? MediaType.OciLayerGzip : compression === 'zstd' ? MediaType.OciLayerZstd : MediaType.OciLayer;
    built.push({ desc: { mediaType, digest: digestOf(bytes), size: bytes.length } as Descriptor, bytes, uncompressed, diffId: digestOf(uncompressed) });
  }
  const history = options.history ?? layers.map((l, i) => ({ created_by: l.createdBy ?? `/bin/sh -c step ${i + 1}` }));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: options.diffIds ?? built.map((l) => l.diffId) },
      history,
    }),
  );
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
  const doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: built.map((l) => l.desc) };
  return { manifest: parseManifest(Buffer.from(JSON.stringify(doc))), config, configDesc, layers: built };
}

/** A temp dir holding test images as OCI layouts; `dispose` removes it. */
export async function workDir(): Promise<{ dir: string; dispose: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-analyze-'));
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** Writes `layers` as an OCI layout under `dir/name` and returns its `oci:` spec (tag `t`). */
export async function writeImage(dir: string, name: string, layers: LayerSpec[], options: ImageOptions = {}): Promise<{ spec: string; image: RandomImage }> {
  const image = await makeImage(layers, options);
  const spec = `oci:${join(dir, name)}:t`;
  const target = await openTarget(spec, { mode: 'write' });
  try {
    await writeImageToTarget(target, image, 't');
  } finally {
    await target.close();
  }
  return { spec, image };
}

/** Overwrites a stored blob's bytes in place (the layout keeps it under its old digest): a corrupt blob. */
export async function replaceBlob(dir: string, name: string, digest: Digest, bytes: Buffer): Promise<void> {
  await writeFile(join(dir, name, 'blobs', 'sha256', digestHex(digest)), bytes);
}

/** Writes `layers` as an image in a fresh temp dir and analyzes it (the dir is removed afterwards). */
export async function analyzeLayers(layers: LayerSpec[], options: ImageOptions = {}): Promise<AnalysisResult> {
  const work = await workDir();
  try {
    const { spec } = await writeImage(work.dir, 'img', layers, options);
    const target = await openTarget(spec, { mode: 'read' });
    try {
      return await analyze({ target, fileLists: true });
    } finally {
      await target.close();
    }
  } finally {
    await work.dispose();
  }
}
