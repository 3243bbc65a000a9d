import { holdErrors } from './stream-util.js';
import { Transform } from 'node:stream';
import { createLimiter } from './concurrency.js';
import type { Descriptor, Platform } from './descriptor.js';
import type { Digest } from './digest.js';
import { KilnError, isKilnError } from './errors.js';
import { type RawManifest } from './manifest.js';
import { selectManifestForPlatform } from './platform.js';
import type { Target } from './target.js';

/** Progress of a copy, reported through `onProgress`; the CLI renders it. */
export type CopyEvent =
  | { type: 'blob-start'; digest: Digest; size: number; mediaType: string }
  | { type: 'blob-progress'; digest: Digest; size: number; bytes: number }
  | { type: 'blob-done'; digest: Digest; size: number; action: 'copied' | 'skipped' | 'mounted' }
  | { type: 'manifest'; digest: Digest; mediaType: string; tag?: string | undefined };

export interface CopyOptions {
  source: Target;
  destination: Target;
  /** Copy only this platform's manifest out of an index (the default copies every platform). */
  platform?: Platform | undefined;
  /** Also copy referrers (OCI 1.1 subject links) and cosign-style `sha256-<hex>.sig/.att/.sbom` tags. */
  withReferrers?: boolean;
  /** Blobs transferred at once (default 4). */
  concurrency?: number;
  /** Tag to give the copy; defaults to the destination's tag, then the source's. */
  tag?: string | undefined;
  /**
   * Other tags of the source repository copied after the image, under the same names, when the source has them
   * (absent ones are skipped): repository-level metadata such as the signer's `kiln-tag-state`. With
   * `withReferrers`, their referrers come too. A tag already in the destination is overwritten.
   */
  extraTags?: readonly string[] | undefined;
  onProgress?: (event: CopyEvent) => void;
}

export interface CopyResult {
  digest: Digest;
  mediaType: string;
  size: number;
  tag?: string | undefined;
  manifests: number;
  blobs: { copied: number; skipped: number; mounted: number; bytes: number };
  referrers: number;
  /** Which of `extraTags` the source had and were copied. */
  extraTags: string[];
}

/** Suffixes cosign uses for tags that carry data about `sha256-<hex>`. */
const COSIGN_TAG_SUFFIXES = ['.sig', '.att', '.sbom'];

/**
 * Copies the image the source names into the destination: blobs first (in parallel, skipping those
 * already there), then manifests children-first, so the destination never references missing
 * content. Manifest bytes are copied exactly, so digests are preserved.
 */
export async function copyImage(options: CopyOptions): Promise<CopyResult> {
  const { source, destination } = options;
  const run = createLimiter(options.concurrency ?? 4);
  const emit = options.onProgress ?? (() => undefined);
  const blobJobs = new Map<Digest, Promise<void>>();
  const manifestJobs = new Map<Digest, Promise<void>>();
  const result: CopyResult = {
    digest: '' as Digest,
    mediaType: '',
    size: 0,
    manifests: 0,
    blobs: { copied: 0, skipped: 0, mounted: 0, bytes: 0 },
    referrers: 0,
    extraTags: [],
  };

  const copyBlob = (desc: Descriptor): Promise<void> => {
    let job = blobJobs.get(desc.digest);
    if (!job) {
      job = run(async () => {
        const present = await destination.statBlob(desc.digest);
        if (present === desc.size) {
          result.blobs.skipped++;
          emit({ type: 'blob-done', digest: desc.digest, size: desc.size, action: 'skipped' });
          return;
        }
        const origin = source.origin;
        const sameRegistry = origin && destination.origin?.registry === origin.registry;
        if (sameRegistry && destination.mountBlob && destination.origin?.repository !== origin.repository) {
          if (await destination.mountBlob(desc, origin.repository)) {
            result.blobs.mounted++;
            emit({ type: 'blob-done', digest: desc.digest, size: desc.size, action: 'mounted' });
            return;
          }
        }
        emit({ type: 'blob-start', digest: desc.digest, size: desc.size, mediaType: desc.mediaType });
        // A factory, so a registry upload that fails midway can start again from a fresh download.
        await destination.putBlob(desc, async () => {
          // Every Target.putBlob verifies digest and size before the blob becomes visible, so the
          // source need not hash the same bytes too.
          const data = await source.getBlob(desc, { verify: false });
          // Without a progress listener, no counting stage: every stage costs a hop per chunk.
          if (!options.onProgress) return data;
          const counted = holdErrors(data.pipe(progressCounter(desc, emit)));
          // pipe() does not forward errors: a failed source verification must fail the upload.
          data.once('error', (err) => counted.destroy(err));
          return counted;
        });
        result.blobs.copied++;
        result.blobs.bytes += desc.size;
        emit({ type: 'blob-done', digest: desc.digest, size: desc.size, action: 'copied' });
      });
      blobJobs.set(desc.digest, job);
    }
    return job;
  };

  const copyTree = (raw: RawManifest, tag?: string): Promise<void> => {
    const key = raw.digest;
    const existing = tag === undefined ? manifestJobs.get(key) : undefined;
    if (existing) return existing;
    const job = (async () => {
      if (raw.kind === 'index') {
        await Promise.all(
          raw.parsed.manifests.map(async (child) => copyTree(await source.getManifest(child.digest, child.mediaType))),
        );
      } else {
        await Promise.all([raw.parsed.config, ...raw.parsed.layers].map(copyBlob));
      }
      await destination.putManifest(raw, tag);
      result.manifests++;
      emit({ type: 'manifest', digest: raw.digest, mediaType: raw.mediaType, tag });
      if (options.withReferrers) await copyReferrers(raw.digest);
    })();
    if (tag === undefined) manifestJobs.set(key, job);
    return job;
  };

  const copyReferrers = async (subject: Digest): Promise<void> => {
    const referrers = await source.referrers(subject);
    await Promise.all(
      referrers.map(async (desc) => {
        result.referrers++;
        await copyTree(await source.getManifest(desc.digest, desc.mediaType));
      }),
    );
    const prefix = subject.replace(':', '-');
    for (const suffix of COSIGN_TAG_SUFFIXES) {
      const tag = prefix + suffix;
      const raw = await getIfPresent(source, tag);
      if (!raw) continue;
      result.referrers++;
      await copyTree(raw, tag);
    }
  };

  let root = await source.resolve();
  if (options.platform && root.kind === 'index') {
    const chosen = selectManifestForPlatform(root.parsed, options.platform);
    root = await source.getManifest(chosen.digest, chosen.mediaType);
  }
  const tag = options.tag ?? destination.ref.tag ?? (destination.ref.digest ? undefined : source.ref.tag);
  if (destination.ref.digest && destination.ref.digest !== root.digest) {
    throw new KilnError('DIGEST_MISMATCH', `${destination.description} names digest ${destination.ref.digest} but the source is ${root.digest}`);
  }
  await copyTree(root, tag);
  // After the image, so an extra tag describing it (a signed tag state) never lands before what it names.
  for (const extra of options.extraTags ?? []) {
    if (extra === tag) continue;
    const raw = await getIfPresent(source, extra);
    if (!raw) continue;
    await copyTree(raw, extra);
    result.extraTags.push(extra);
  }
  Object.assign(result, { digest: root.digest, mediaType: root.mediaType, size: root.bytes.length, tag });
  return result;
}

async function getIfPresent(target: Target, tag: string): Promise<RawManifest | undefined> {
  try {
    return await target.getManifest(tag);
  } catch (err) {
    if (isKilnError(err, 'MANIFEST_UNKNOWN', 'NOT_FOUND', 'NAME_UNKNOWN')) return undefined;
    throw err;
  }
}

/** Pass-through that reports bytes as they flow, at most every 1 MiB. */
function progressCounter(desc: Descriptor, emit: (e: CopyEvent) => void): Transform {
  let bytes = 0;
  let reported = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes - reported >= 1 << 20 || bytes === desc.size) {
        reported = bytes;
        emit({ type: 'blob-progress', digest: desc.digest, size: desc.size, bytes });
      }
      cb(null, chunk);
    },
  });
}
