import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Annotation, type Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { OciLayout } from '../../oci/layout/oci-layout.js';
import { OciLayoutTarget } from '../../oci/layout/layout-target.js';
import { formatReference, parseReference } from '../../oci/reference.js';
import { BuildCache } from './build-cache.js';
import { UnpackedCache } from './unpacked-cache.js';

/** Where Kiln keeps images and build cache: `$KILN_DATA_DIR`, else `$XDG_DATA_HOME/kiln`, else `~/.local/share/kiln`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KILN_DATA_DIR) return env.KILN_DATA_DIR;
  const xdg = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'kiln');
}

/** An image the store holds under a name. */
export interface StoredImage {
  /** Normalised reference, e.g. `docker.io/library/app:latest`. */
  name: string;
  descriptor: Descriptor;
}

/**
 * Kiln's local content store: one OCI image layout (`images/`) holding every built or pulled image
 * (index.json ref names are normalised references) and every cached layer blob, beside the build
 * cache index (`cache/`), RUN cache mounts (`cache-mounts/`) and scratch space (`tmp/`, same filesystem,
 * so finished layers are renamed in, never copied).
 */
export class LocalStore {
  readonly root: string;
  readonly layout: OciLayout;
  readonly cache: BuildCache;
  /** Base images' layers unpacked, cloned into stage rootfs by hard links (`unpacked/`). */
  readonly unpacked: UnpackedCache;

  private constructor(root: string, layout: OciLayout) {
    this.root = root;
    this.layout = layout;
    this.cache = new BuildCache(join(root, 'cache'));
    this.unpacked = new UnpackedCache(join(root, 'unpacked'), join(root, 'tmp'));
  }

  /** Opens (creating if needed) the store at `root`. */
  static async open(root: string = defaultDataDir()): Promise<LocalStore> {
    await mkdir(root, { recursive: true });
    const layout = await OciLayout.open(join(root, 'images'), 'write');
    await mkdir(join(root, 'tmp'), { recursive: true });
    return new LocalStore(root, layout);
  }

  /** The layout's own temp dir: on the blob store's filesystem, so a layer written there can be adopted by rename. */
  get blobTmpDir(): string {
    return this.layout.blobs.tmpDir;
  }

  /** A fresh scratch directory under `tmp/`; the caller removes it. */
  async scratch(prefix: string): Promise<string> {
    return mkdtemp(join(this.root, 'tmp', `${prefix}-`));
  }

  /** Directory of a RUN `--mount=type=cache` id (ids are hashed, so any string is safe). */
  cacheMountDir(hashedId: string): string {
    return join(this.root, 'cache-mounts', hashedId);
  }

  /** Directory where stat caches of build contexts live. */
  get statCacheDir(): string {
    return join(this.root, 'statcache');
  }

  /** A Target over the store, for copying images in or out (`ref` is a stored name or digest). */
  target(ref?: { tag?: string; digest?: Digest }): OciLayoutTarget {
    const description = ref?.tag ? `local image ${ref.tag}` : ref?.digest ? `local image ${ref.digest}` : 'local image store';
    return new OciLayoutTarget({ layout: this.layout, ref, description });
  }

  /** Every named image, in index order. */
  async images(): Promise<StoredImage[]> {
    const { manifests } = await this.layout.readIndex();
    return manifests.flatMap((d) => {
      const name = d.annotations?.[Annotation.RefName];
      return name ? [{ name, descriptor: d }] : [];
    });
  }

  /**
   * The stored image `spec` names: a reference (normalised as docker does: `app` → docker.io/library/app:latest),
   * a full or short (≥ 12 hex) image digest. Throws NOT_FOUND naming the fix.
   */
  async find(spec: string): Promise<StoredImage> {
    const images = await this.images();
    const hex = spec.replace(/^sha256:/, '');
    if (/^[a-f0-9]{12,64}$/.test(hex)) {
      const hits = images.filter((i) => i.descriptor.digest.slice('sha256:'.length).startsWith(hex));
      const first = hits[0];
      if (first && hits.every((h) => h.descriptor.digest === first.descriptor.digest)) return first;
    }
    const name = normaliseName(spec);
    const found = images.find((i) => i.name === name);
    if (!found) {
      throw new KilnError('NOT_FOUND', `image "${spec}" is not in the local store (${this.root})`, {
        hint: 'list images with `kiln images`, or fetch it with `kiln pull`',
      });
    }
    return found;
  }

  /** Names the stored manifest `digest` as `name` (a reference, normalised). */
  async tag(name: string, digest: Digest): Promise<string> {
    const normal = normaliseName(name);
    await this.layout.tag(normal, digest);
    return normal;
  }

  /** Removes the name; the blobs stay until `prune`. Returns false when no image had that name. */
  async untag(name: string): Promise<boolean> {
    const normal = normaliseName(name);
    return this.layout.untag(normal);
  }

  /** Releases the layout's temp dir. */
  async close(): Promise<void> {
    await this.layout.close();
  }

  /** Removes scratch space left by a killed build. */
  async clearScratch(): Promise<void> {
    await rm(join(this.root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(this.root, 'tmp'), { recursive: true });
  }
}

/** `app` → `docker.io/library/app:latest`; a digest-only reference keeps its digest. */
export function normaliseName(spec: string): string {
  return formatReference(parseReference(spec));
}
