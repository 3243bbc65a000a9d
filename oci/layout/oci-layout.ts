import { mkdir, readFile, readdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Annotation, type Descriptor } from '../descriptor.js';
import { type Digest, verifyBytes } from '../digest.js';
import { KilnError, errorMessage } from '../errors.js';
import { FsBlobStore, isNotFound, pathExists } from '../content/fs-blob-store.js';
import { OCI_LAYOUT_VERSION } from '../layout-types.js';
import { manifestDescriptor, MAX_MANIFEST_BYTES, parseManifest, type ImageIndex, type RawManifest } from '../manifest.js';
import { MediaType } from '../media-types.js';
import { readStreamLimited } from '../stream-util.js';
import {
  MAX_LAYOUT_FILE_BYTES,
  parseIndexFile,
  parseLayoutHeader,
  serializeIndex,
  validateRefName,
  writeFileAtomic,
} from './index-file.js';

/** How to open a layout: `read` needs an existing one; `write` creates it when the directory is absent or empty. */
export type LayoutMode = 'read' | 'write';

/** What to look up in a layout: a ref name (tag), a digest, or neither (the only image). */
export interface LayoutRef {
  tag?: string | undefined;
  digest?: Digest | undefined;
}

const TMP_DIR = '.kiln-tmp';

/**
 * An OCI image layout directory (image-spec image-layout.md): `oci-layout`, `index.json` and
 * `blobs/<alg>/<encoded>`. Blobs are verified before they become visible; index.json is replaced
 * atomically, and updates within one process are serialised.
 */
export class OciLayout {
  readonly dir: string;
  readonly blobs: FsBlobStore;
  readonly mode: LayoutMode;
  private queue: Promise<unknown> = Promise.resolve();
  /** A new layout whose index.json and oci-layout are not written yet (see open()). */
  private pending = false;

  private constructor(dir: string, mode: LayoutMode) {
    this.dir = dir;
    this.mode = mode;
    this.blobs = new FsBlobStore({ root: join(dir, 'blobs'), tmpDir: join(dir, TMP_DIR) });
  }

  /**
   * Opens (and in `write` mode creates) the layout at `dir`, validating `oci-layout` and `index.json`. A new
   * layout gets its `blobs/` now and its `index.json` and `oci-layout` at the first index update or at close():
   * written once, not also empty at open, and until then no reader takes the directory for a complete layout.
   */
  static async open(dir: string, mode: LayoutMode): Promise<OciLayout> {
    const layout = new OciLayout(dir, mode);
    // A directory holding only what creation makes before the spec files (a crash during a copy into a new
    // layout) is still new: its blobs are verified and durable, so they stay and the layout completes.
    const all = await readdirOrUndefined(dir);
    const entries = all?.filter((e) => e !== TMP_DIR && e !== 'blobs');
    if (entries === undefined || entries.length === 0) {
      if (mode === 'read') {
        const why = all === undefined ? 'no such directory' : all.includes('blobs') ? 'it has no oci-layout (an unfinished copy?)' : 'the directory is empty';
        throw new KilnError('LAYOUT_INVALID', `${dir} is not an OCI image layout: ${why}`);
      }
      await mkdir(join(dir, 'blobs'), { recursive: true });
      layout.pending = true;
      return layout;
    } else if (!entries.includes('oci-layout')) {
      throw new KilnError('LAYOUT_INVALID', `${join(dir, 'oci-layout')}: missing, so ${dir} is not an OCI image layout`, {
        hint: mode === 'write' ? 'write into an empty or new directory' : undefined,
      });
    }
    parseLayoutHeader(await readSmall(join(dir, 'oci-layout')), join(dir, 'oci-layout'));
    await layout.readIndex();
    return layout;
  }

  /** The validated contents of index.json. */
  async readIndex(): Promise<ImageIndex> {
    if (this.pending) {
      // Another writer may have completed the new layout since open(): then its index.json is the one to update.
      if (!(await pathExists(join(this.dir, 'oci-layout')))) return emptyIndex();
      this.pending = false;
    }
    const file = join(this.dir, 'index.json');
    return parseIndexFile(await readSmall(file), file);
  }

  /** The index.json entry `ref` names; errors list what the layout holds when nothing or several match. */
  async find(ref: LayoutRef): Promise<Descriptor> {
    const { manifests } = await this.readIndex();
    if (ref.tag !== undefined) {
      const matches = manifests.filter((d) => d.annotations?.[Annotation.RefName] === ref.tag);
      const found = matches.find((d) => ref.digest === undefined || d.digest === ref.digest);
      if (!found) throw new KilnError('MANIFEST_UNKNOWN', `no image tagged "${ref.tag}" in ${this.dir}${available(manifests)}`);
      return found;
    }
    if (ref.digest !== undefined) {
      const entry = manifests.find((d) => d.digest === ref.digest);
      if (entry) return entry;
      // Any stored manifest is addressable by digest, e.g. one platform's manifest under an index.
      const raw = await this.getManifest(ref.digest);
      return { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
    }
    // One image under several ref names is still the only image.
    const distinct = [...new Map(manifests.map((d) => [d.digest, d] as const)).values()];
    const [only, ...rest] = distinct;
    if (!only) throw new KilnError('MANIFEST_UNKNOWN', `${this.dir} holds no images`);
    if (rest.length > 0) {
      throw new KilnError('MANIFEST_UNKNOWN', `${this.dir} holds ${distinct.length} images; name one with :tag${available(manifests)}`);
    }
    return only;
  }

  /** A stored manifest, read with a size cap and verified against its digest. */
  async getManifest(digest: Digest, mediaTypeHint?: string): Promise<RawManifest> {
    const info = await this.blobs.stat(digest);
    if (!info) throw new KilnError('MANIFEST_UNKNOWN', `manifest ${digest} is not in ${this.dir}`);
    if (info.size > MAX_MANIFEST_BYTES) throw new KilnError('MANIFEST_INVALID', `manifest ${digest} in ${this.dir} is ${info.size} bytes, over the 4 MiB limit`);
    const bytes = await readStreamLimited(await this.blobs.get(digest), MAX_MANIFEST_BYTES, `manifest ${digest}`);
    verifyBytes(bytes, digest, `manifest ${digest} in ${this.dir}`);
    return parseManifest(bytes, mediaTypeHint, `manifest ${digest} in ${this.dir}`);
  }

  /**
   * Stores manifest bytes as a blob and records it in index.json: tagged (replacing the entry with
   * the same ref name), or untagged when it has no parent index to be reached through.
   */
  async putManifest(manifest: RawManifest, tag?: string): Promise<Descriptor> {
    this.assertWritable();
    if (tag !== undefined) validateRefName(tag);
    await this.blobs.put(manifest.bytes, {
      expectedDigest: manifest.digest,
      expectedSize: manifest.bytes.length,
      subject: `manifest ${manifest.digest}`,
    });
    const desc = indexEntry(manifest);
    await this.updateIndex((entries) => {
      // Children an index now reaches no longer need their own untagged entries.
      const children = new Set(manifest.kind === 'index' ? manifest.parsed.manifests.map((d) => d.digest) : []);
      let next = entries.filter((d) => !(children.has(d.digest) && refName(d) === undefined));
      if (tag !== undefined) {
        next = next.filter((d) => refName(d) !== tag);
        next.push({ ...desc, annotations: { ...desc.annotations, [Annotation.RefName]: tag } });
      } else if (!next.some((d) => d.digest === desc.digest)) {
        next.push(desc);
      }
      return next;
    });
    return desc;
  }

  /** Points `tag` at an already stored manifest, replacing the entry with the same ref name. */
  async tag(tag: string, digest: Digest): Promise<void> {
    await this.putManifest(await this.getManifest(digest), tag);
  }

  /** Removes the index.json entries named `tag` (their blobs stay); false when there were none. */
  async untag(tag: string): Promise<boolean> {
    this.assertWritable();
    let removed = false;
    await this.updateIndex((entries) => {
      const next = entries.filter((d) => refName(d) !== tag);
      removed = next.length !== entries.length;
      return next;
    });
    return removed;
  }

  /** Ref names (tags) in index.json, in index order. */
  async tags(): Promise<string[]> {
    const names = (await this.readIndex()).manifests.map(refName).filter((n): n is string => n !== undefined);
    return [...new Set(names)];
  }

  /** Writes a new layout's spec files if no update did, then removes the temp directory when nothing is left in it. */
  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    if (this.pending) await this.updateIndex((entries) => entries);
    try {
      await rmdir(join(this.dir, TMP_DIR));
    } catch (err) {
      const code = (err as { code?: string }).code;
      // ENOENT: never created; ENOTEMPTY/EEXIST: another writer still has files there.
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }

  /** Read-modify-write of index.json, serialised so concurrent puts in this process do not lose entries. */
  private async updateIndex(change: (entries: Descriptor[]) => Descriptor[]): Promise<void> {
    const run = async (): Promise<void> => {
      const index = await this.readIndex();
      const next: ImageIndex = { ...index, mediaType: index.mediaType ?? MediaType.OciIndex, manifests: change(index.manifests) };
      await writeFileAtomic(join(this.dir, 'index.json'), serializeIndex(next), join(this.dir, TMP_DIR));
      if (this.pending) {
        // oci-layout last: it marks the directory as a complete layout.
        await writeFileAtomic(join(this.dir, 'oci-layout'), Buffer.from(`${JSON.stringify({ imageLayoutVersion: OCI_LAYOUT_VERSION })}\n`), join(this.dir, TMP_DIR));
        this.pending = false;
      }
    };
    const job = this.queue.then(run, run);
    this.queue = job.catch(() => undefined);
    return job;
  }

  private assertWritable(): void {
    if (this.mode !== 'write') throw new KilnError('USAGE', `${this.dir} was opened read-only`);
  }
}

/** The descriptor index.json records for a manifest (artifactType kept so referrers can be filtered). */
function indexEntry(manifest: RawManifest): Descriptor {
  const desc = manifestDescriptor(manifest);
  // A referrer's descriptor carries artifactType, falling back to config.mediaType (manifest.md § artifactType).
  if (desc.artifactType === undefined && manifest.kind === 'manifest' && manifest.parsed.subject) {
    desc.artifactType = manifest.parsed.config.mediaType;
  }
  return desc;
}

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
}

function refName(d: Descriptor): string | undefined {
  return d.annotations?.[Annotation.RefName];
}

function available(manifests: Descriptor[]): string {
  const names = manifests.map((d) => refName(d) ?? d.digest);
  return names.length ? ` (it has: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})` : '';
}

async function readSmall(file: string): Promise<Buffer> {
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new KilnError('LAYOUT_INVALID', `${file}: not a regular file`);
    if (st.size > MAX_LAYOUT_FILE_BYTES) throw new KilnError('LAYOUT_INVALID', `${file}: ${st.size} bytes is over the ${MAX_LAYOUT_FILE_BYTES}-byte limit`);
    return await readFile(file);
  } catch (err) {
    if (isNotFound(err)) throw new KilnError('LAYOUT_INVALID', `${file}: missing, so this is not an OCI image layout`, { cause: err });
    if (err instanceof KilnError) throw err;
    throw new KilnError('LAYOUT_INVALID', `${file}: cannot read (${errorMessage(err)})`, { cause: err });
  }
}

async function readdirOrUndefined(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
