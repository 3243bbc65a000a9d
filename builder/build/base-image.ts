import { MAX_CONFIG_BYTES, parseImageConfig, type ImageConfig } from '../../oci/config.js';
import { copyImage, type CopyEvent } from '../../oci/copy.js';
import type { Descriptor, Platform } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { KilnError, errorMessage, isKilnError } from '../../oci/errors.js';
import { openOciLayout } from '../../oci/layout/layout-target.js';
import type { RawManifest } from '../../oci/manifest.js';
import { formatPlatform, platformMatches } from '../../oci/platform.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { readStreamLimited } from '../../oci/stream-util.js';
import type { Target } from '../../oci/target.js';
import { openTarget } from '../../oci/transports.js';
import type { LocalStore } from '../store/local-store.js';

/** A layer of an image as the build uses it: the blob and its uncompressed digest. */
export interface ImageLayer {
  descriptor: Descriptor;
  diffId: Digest;
}

/** A resolved base image, its blobs in the local store. */
export interface BaseImage {
  /** What the Dockerfile named, for history and messages. */
  name: string;
  /** Manifest digest (absent for scratch). */
  digest?: Digest;
  config: ImageConfig;
  layers: ImageLayer[];
}

/** Where base images may come from. */
export interface ImageSources {
  store: LocalStore;
  registry?: { authfile?: string | undefined; insecure?: boolean | undefined };
  /** `--build-context NAME=oci-layout://DIR[:tag|@digest]` or `docker-image://REF`: replaces FROM NAME. */
  namedImages: Map<string, string>;
  /** Re-fetch registry images even when the store already has them (`--pull`). */
  pull: boolean;
  /** Images already resolved in this build, by name and platform: each is fetched once. */
  resolved?: Map<string, Promise<BaseImage>>;
  onProgress?: (event: CopyEvent) => void;
}

/** The empty image `FROM scratch` starts from. */
export function scratchImage(platform: Platform): BaseImage {
  return {
    name: 'scratch',
    config: { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), rootfs: { type: 'layers', diff_ids: [] }, config: {} },
    layers: [],
  };
}

/**
 * Resolves a FROM image for `platform`: a named build context, else the local store (unless `pull`), else a
 * registry (plain HTTP only for loopback) — copied into the store, digests verified on the way in.
 */
export function resolveBaseImage(name: string, platform: Platform, sources: ImageSources): Promise<BaseImage> {
  const key = `${name}\0${formatPlatform(platform)}`;
  const memo = sources.resolved ?? (sources.resolved = new Map());
  let job = memo.get(key);
  if (!job) {
    job = resolveUncached(name, platform, sources);
    memo.set(key, job);
  }
  return job;
}

async function resolveUncached(name: string, platform: Platform, sources: ImageSources): Promise<BaseImage> {
  const named = sources.namedImages.get(name);
  if (named !== undefined) return fromNamedContext(name, named, platform, sources);
  let normal: string;
  try {
    normal = formatReference(parseReference(name));
  } catch (err) {
    throw new KilnError('DOCKERFILE_INVALID', `FROM ${name}: ${errorMessage(err)}`, { cause: err, hint: 'name an image (registry/repo:tag), an earlier stage, scratch, or a --build-context' });
  }
  if (!sources.pull) {
    const local = await tryLocal(sources.store, platformTag(normal, platform));
    if (local) return imageFromManifest(name, local, sources.store, platform);
  }
  let source: Target;
  try {
    source = await openTarget(name.includes('://') ? name : normal, { mode: 'read', registry: sources.registry });
  } catch (err) {
    throw new KilnError('BUILD_FAILED', `FROM ${name}: cannot open the image: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const copied = await copyImage({
      source,
      destination: sources.store.target(),
      platform,
      tag: platformTag(normal, platform),
      onProgress: sources.onProgress,
    });
    const raw = await sources.store.layout.getManifest(copied.digest);
    return imageFromManifest(name, raw, sources.store, platform);
  } catch (err) {
    const hint = isKilnError(err) ? err.hint : undefined;
    throw new KilnError(isKilnError(err, 'DIGEST_MISMATCH', 'SIZE_MISMATCH') ? err.code : 'BUILD_FAILED', `FROM ${name}: cannot pull the base image: ${errorMessage(err)}`, { cause: err, hint });
  } finally {
    await source.close();
  }
}

/** Whether a store name is a base image the builder cached (not a user's image). */
export function isBuildBaseName(name: string): boolean {
  return name.includes('+');
}

/**
 * Base images are kept in the store under `<reference>` plus a platform suffix in a ref-name-safe form
 * (`…:tag+linux-amd64`), so images of several platforms and the user's own names never collide.
 */
function platformTag(normal: string, platform: Platform): string {
  return `${normal}+${formatPlatform(platform).replace(/\//g, '-')}`;
}

async function tryLocal(store: LocalStore, tag: string): Promise<RawManifest | undefined> {
  try {
    const desc = await store.layout.find({ tag });
    return await store.layout.getManifest(desc.digest, desc.mediaType);
  } catch (err) {
    if (isKilnError(err, 'MANIFEST_UNKNOWN', 'NOT_FOUND')) return undefined;
    throw err;
  }
}

async function fromNamedContext(name: string, spec: string, platform: Platform, sources: ImageSources): Promise<BaseImage> {
  if (spec.startsWith('docker-image://')) {
    return resolveBaseImage(spec.slice('docker-image://'.length), platform, { ...sources, namedImages: new Map() });
  }
  if (!spec.startsWith('oci-layout://')) {
    throw new KilnError('USAGE', `--build-context ${name}=${spec} is a directory, not an image: it can be used by COPY --from=${name}, not FROM`);
  }
  const rest = spec.slice('oci-layout://'.length);
  const at = rest.lastIndexOf('@');
  const colon = rest.lastIndexOf(':');
  let dir = rest;
  let ref: string | undefined;
  if (at > 0) {
    dir = rest.slice(0, at);
    ref = `@${rest.slice(at + 1)}`;
  } else if (colon > rest.lastIndexOf('/')) {
    dir = rest.slice(0, colon);
    ref = rest.slice(colon + 1);
  }
  const source = await openOciLayout({ dir, ref, mode: 'read' });
  try {
    // Tagged like a pulled base (hidden from `kiln images`, dropped by `kiln prune`), so the layout never holds untagged entries.
    const tag = platformTag(`localhost/kiln-build-context/${name.replace(/[^a-z0-9._-]/g, '-')}`, platform);
    const copied = await copyImage({ source, destination: sources.store.target(), platform, tag, onProgress: sources.onProgress });
    return imageFromManifest(name, await sources.store.layout.getManifest(copied.digest), sources.store, platform);
  } catch (err) {
    throw new KilnError(isKilnError(err) ? err.code : 'BUILD_FAILED', `--build-context ${name}=${spec}: ${errorMessage(err)}`, { cause: err });
  } finally {
    await source.close();
  }
}

/** Reads config and layers of a stored single-platform manifest and checks its platform. */
export async function imageFromManifest(name: string, raw: RawManifest, store: LocalStore, platform: Platform): Promise<BaseImage> {
  if (raw.kind !== 'manifest') throw new KilnError('BUILD_FAILED', `FROM ${name}: expected an image manifest, got an index`);
  const configDesc = raw.parsed.config;
  const bytes = await readStreamLimited(await store.layout.blobs.get(configDesc.digest), MAX_CONFIG_BYTES, `config of ${name}`);
  const config = parseImageConfig(bytes, `config of ${name}`);
  const have: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  if (!platformMatches(platform, have)) {
    throw new KilnError('PLATFORM_UNKNOWN', `FROM ${name}: the image is ${formatPlatform(have)}, not the requested ${formatPlatform(platform)}`, {
      hint: `build with --platform ${formatPlatform(have)}, or use an image that provides ${formatPlatform(platform)}`,
    });
  }
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== raw.parsed.layers.length) {
    throw new KilnError('BUILD_FAILED', `FROM ${name}: the config lists ${diffIds.length} diff_ids for ${raw.parsed.layers.length} layers`);
  }
  return {
    name,
    digest: raw.digest,
    config,
    layers: raw.parsed.layers.map((descriptor, i) => ({ descriptor, diffId: diffIds[i]! })),
  };
}
