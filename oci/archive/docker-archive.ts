import { KilnError } from '../errors.js';
import { OciLayoutTarget } from '../layout/layout-target.js';
import { type LayoutMode, OciLayout } from '../layout/oci-layout.js';
import type { TargetRef } from '../target.js';
import { extractDockerArchive, type DockerArchiveImage } from './docker-archive-read.js';
import { DockerArchiveWriter } from './docker-archive-write.js';
import { familiarReference } from './docker-save-format.js';
import { assertWritableDestination } from './oci-archive.js';
import { type ArchiveLimits, DEFAULT_ARCHIVE_LIMITS } from './tar-reader.js';
import { makeWorkDir, removeWorkDir } from './work-dir.js';

/** Options of `openDockerArchive`. */
export interface OpenDockerArchiveOptions {
  file: string;
  /**
   * A docker reference (`app:1`, `docker.io/library/app:1`, `localhost:5000/x:y`), or when reading
   * `@N` for the archive's N-th image (as skopeo's docker-archive source index).
   */
  ref?: string | undefined;
  mode: LayoutMode;
  /** Parent of the private work directory; default os.tmpdir(). */
  tmpDir?: string | undefined;
  limits?: Partial<ArchiveLimits> | undefined;
}

/**
 * Opens `docker-archive:FILE[:ref]` (the `docker save` / `docker load` format). Reading unpacks into
 * a private temp layout (every digest verified, unsafe members refused) and presents each image as a
 * Docker schema2 manifest with uncompressed layers; writing holds one image and `close()` writes
 * the classic archive atomically (`close({ discard: true })` leaves nothing behind).
 */
export async function openDockerArchive(options: OpenDockerArchiveOptions): Promise<OciLayoutTarget> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits };
  const description = `docker-archive:${options.file}${options.ref ? `:${options.ref}` : ''}`;
  if (options.mode === 'write') {
    if (options.ref?.startsWith('@')) throw new KilnError('USAGE', `${description}: @N selects an image to read; to write, give name:tag`);
    const repoTags = options.ref ? [familiarReference(options.ref)] : [];
    await assertWritableDestination(options.file);
    const work = await makeWorkDir('docker-archive', options.tmpDir);
    try {
      const layout = await OciLayout.open(work, 'write');
      return new DockerArchiveWriter({ layout, file: options.file, repoTags, description, maxLayerBytes: limits.maxMemberBytes });
    } catch (err) {
      await removeWorkDir(work);
      throw err;
    }
  }
  const work = await makeWorkDir('docker-archive', options.tmpDir);
  try {
    const images = await extractDockerArchive(options.file, work, limits);
    const ref = selectImage(images, options.ref, description);
    const layout = await OciLayout.open(work, 'read');
    return new OciLayoutTarget({ layout, ref, description, onClose: () => removeWorkDir(work) });
  } catch (err) {
    await removeWorkDir(work);
    throw err;
  }
}

/** The image `ref` names: a RepoTag, `@N`, or the only image; errors list what the archive holds. */
function selectImage(images: DockerArchiveImage[], ref: string | undefined, description: string): TargetRef {
  const holds = (): string =>
    images.map((img, i) => `@${i}${img.tags.length ? ` (${img.tags.join(', ')})` : ''}`).join(', ');
  if (ref === undefined || ref === '') {
    const distinct = new Set(images.map((img) => img.digest));
    const only = images[0];
    if (distinct.size === 1 && only) return { digest: only.digest };
    throw new KilnError('USAGE', `${description} holds ${distinct.size} images; name one as :name:tag or :@N (it has: ${holds()})`);
  }
  if (ref.startsWith('@')) {
    const n = /^@(\d+)$/.exec(ref)?.[1];
    const image = n === undefined ? undefined : images[Number(n)];
    if (!image) throw new KilnError('NOT_FOUND', `${description}: no image ${ref} (it has: ${holds()})`);
    return { digest: image.digest };
  }
  const tag = familiarReference(ref);
  if (!images.some((img) => img.tags.includes(tag))) {
    throw new KilnError('MANIFEST_UNKNOWN', `${description}: no image tagged ${tag} (it has: ${holds()})`);
  }
  return { tag };
}
