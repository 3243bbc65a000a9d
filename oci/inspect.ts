import type { Platform } from './descriptor.js';
import type { Digest } from './digest.js';
import { KilnError } from './errors.js';
import { MAX_CONFIG_BYTES, parseImageConfig, type ImageConfig } from './config.js';
import { type RawManifest } from './manifest.js';
import { formatPlatform, selectManifestForPlatform } from './platform.js';
import { readStreamLimited } from './stream-util.js';
import type { Target } from './target.js';

/** Largest config blob read into memory; configs are small JSON documents. */

export interface LayerSummary {
  digest: Digest;
  mediaType: string;
  size: number;
  diffId?: Digest | undefined;
}

/** What `kiln inspect` reports about one image or index (plain JSON). */
export interface ImageSummary {
  name: string;
  digest: Digest;
  mediaType: string;
  /** Platforms of an index's manifests. */
  platforms?: Array<{ platform: string; digest: Digest; size: number; mediaType: string }>;
  config?: { digest: Digest; size: number; mediaType: string };
  created?: string | undefined;
  os?: string;
  architecture?: string;
  variant?: string | undefined;
  layers?: LayerSummary[];
  /** Config plus layers (compressed sizes), as a registry stores them. */
  totalSize?: number;
  annotations?: Record<string, string> | undefined;
  labels?: Record<string, string> | undefined;
  entrypoint?: string[] | null | undefined;
  cmd?: string[] | null | undefined;
  history?: ImageConfig['history'];
}

export interface InspectOptions {
  target: Target;
  /** Pick this platform's manifest out of an index instead of summarising the index. */
  platform?: Platform | undefined;
}

/** Resolves the target and summarises its manifest, config and layers. */
export async function inspectImage(options: InspectOptions): Promise<{ summary: ImageSummary; manifest: RawManifest }> {
  const { target } = options;
  let manifest = await target.resolve();
  if (manifest.kind === 'index' && options.platform) {
    const chosen = selectManifestForPlatform(manifest.parsed, options.platform);
    manifest = await target.getManifest(chosen.digest, chosen.mediaType);
  }
  const summary: ImageSummary = {
    name: target.description,
    digest: manifest.digest,
    mediaType: manifest.mediaType,
    annotations: manifest.parsed.annotations,
  };
  if (manifest.kind === 'index') {
    summary.platforms = manifest.parsed.manifests.map((d) => ({
      platform: d.platform ? formatPlatform(d.platform) : 'unknown',
      digest: d.digest,
      size: d.size,
      mediaType: d.mediaType,
    }));
    return { summary, manifest };
  }
  const { config: configDesc, layers } = manifest.parsed;
  summary.config = { digest: configDesc.digest, size: configDesc.size, mediaType: configDesc.mediaType };
  summary.totalSize = configDesc.size + layers.reduce((sum, l) => sum + l.size, 0);
  if (configDesc.size > MAX_CONFIG_BYTES) {
    throw new KilnError('TOO_LARGE', `config ${configDesc.digest} of ${target.description} is ${configDesc.size} bytes, over 4 MiB`);
  }
  const configBytes = await readStreamLimited(await target.getBlob(configDesc), MAX_CONFIG_BYTES);
  let config: ImageConfig | undefined;
  if (configDesc.mediaType.endsWith('config.v1+json') || configDesc.mediaType === 'application/vnd.docker.container.image.v1+json') {
    config = parseImageConfig(configBytes, `config ${configDesc.digest}`);
  }
  summary.layers = layers.map((l, i) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: config?.rootfs.diff_ids[i] }));
  if (config) {
    summary.created = config.created;
    summary.os = config.os;
    summary.architecture = config.architecture;
    summary.variant = config.variant;
    summary.labels = config.config?.Labels ?? undefined;
    summary.entrypoint = config.config?.Entrypoint;
    summary.cmd = config.config?.Cmd;
    summary.history = config.history;
  }
  return { summary, manifest };
}
