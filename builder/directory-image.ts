import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { Descriptor, Platform } from '../oci/descriptor.js';
import { digestOf } from '../oci/digest.js';
import { parseManifest, type RawManifest } from '../oci/manifest.js';
import { MediaType } from '../oci/media-types.js';
import type { Target } from '../oci/target.js';
import { writeDirectoryLayer } from './layer-writer.js';

export interface DirectoryImageOptions {
  /** Root filesystem of the image. */
  directory: string;
  target: Target;
  tag?: string | undefined;
  platform?: Platform;
  /** Image config fields (`config` of the image-spec config.md). */
  config?: { Cmd?: string[]; Entrypoint?: string[]; Env?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
  /** Creation time in seconds since the epoch; default 0 so the image is reproducible. */
  epoch?: number;
}

/** Makes a single-layer image from a directory (a base image from a rootfs) and writes it to `target`. */
export async function imageFromDirectory(options: DirectoryImageOptions): Promise<RawManifest> {
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const created = new Date((options.epoch ?? 0) * 1000).toISOString();
  const layer = await writeDirectoryLayer({ directory: options.directory, epoch: options.epoch });
  try {
    const layerDesc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    await options.target.putBlob(layerDesc, createReadStream(layer.path));
    const config = Buffer.from(
      JSON.stringify({
        created,
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...options.config },
        rootfs: { type: 'layers', diff_ids: [layer.diffId] },
        history: [{ created, created_by: 'kiln: image from directory' }],
      }),
    );
    const configDesc: Descriptor = { mediaType: MediaType.OciConfig, digest: digestOf(config), size: config.length };
    await options.target.putBlob(configDesc, Readable.from([config]));
    const manifestBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: configDesc, layers: [layerDesc] }),
    );
    const manifest = parseManifest(manifestBytes, MediaType.OciManifest);
    await options.target.putManifest(manifest, options.tag);
    return manifest;
  } finally {
    await layer.cleanup();
  }
}
