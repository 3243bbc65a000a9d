import { holdErrors } from '../stream-util.js';
import { pipeline, type Readable } from 'node:stream';
import { Annotation, type Descriptor } from '../descriptor.js';
import { type Digest, isDigest, parseDigest, verifyBytes, VerifyingStream } from '../digest.js';
import { KilnError } from '../errors.js';
import type { RawManifest } from '../manifest.js';
import { isManifestMediaType } from '../media-types.js';
import type { BlobData, GetBlobOptions, ReferrersQuery, Target, TargetRef } from '../target.js';
import { type LayoutMode, OciLayout } from './oci-layout.js';

/** Options of an `OciLayoutTarget` over an already opened layout. */
export interface OciLayoutTargetOptions {
  layout: OciLayout;
  ref?: TargetRef | undefined;
  /** For messages; defaults to `oci:DIR[:tag]`. */
  description?: string | undefined;
  /** Runs once after the layout is closed; archives write or drop their file and temp dir here. */
  onClose?: ((options: { discard: boolean }) => Promise<void>) | undefined;
}

/** Options of `openOciLayout`. */
export interface OpenOciLayoutOptions {
  dir: string;
  /** Tag (ref name) or digest; a string is parsed as `tag`, `@digest` or `tag@digest`. */
  ref?: TargetRef | string | undefined;
  mode: LayoutMode;
}

/** `oci:DIR[:tag]` as a `Target`: an OCI image layout directory. */
export class OciLayoutTarget implements Target {
  readonly description: string;
  readonly ref: TargetRef;
  readonly layout: OciLayout;
  private readonly onClose: OciLayoutTargetOptions['onClose'];
  private closed: Promise<void> | undefined;

  constructor(options: OciLayoutTargetOptions) {
    this.layout = options.layout;
    this.ref = options.ref ?? {};
    this.description = options.description ?? `oci:${options.layout.dir}${formatRefSuffix(this.ref)}`;
    this.onClose = options.onClose;
  }

  async resolve(): Promise<RawManifest> {
    const desc = await this.layout.find(this.ref);
    return this.layout.getManifest(desc.digest, desc.mediaType);
  }

  async getManifest(ref: Digest | string, mediaTypeHint?: string): Promise<RawManifest> {
    if (isDigest(ref)) return this.layout.getManifest(ref, mediaTypeHint);
    const desc = await this.layout.find({ tag: ref });
    return this.layout.getManifest(desc.digest, desc.mediaType);
  }

  async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    verifyBytes(manifest.bytes, manifest.digest, `manifest ${manifest.digest}`);
    await this.layout.putManifest(manifest, tag);
  }

  async statBlob(digest: Digest): Promise<number | undefined> {
    return (await this.layout.blobs.stat(digest))?.size;
  }

  async getBlob(desc: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
    const source = await this.layout.blobs.get(desc.digest);
    const verifier = new VerifyingStream({
      expected: desc.digest,
      expectedSize: desc.size,
      subject: `blob ${desc.digest} in ${this.description}`,
      countOnly: options.verify === false,
    });
    // The callback form returns the last stream; errors on either side reach the consumer through it.
    return holdErrors(pipeline(source, verifier, () => undefined));
  }

  async putBlob(desc: Descriptor, data: BlobData): Promise<void> {
    if (this.layout.mode !== 'write') {
      if (typeof data !== 'function') data.resume();
      throw new KilnError('USAGE', `${this.description} was opened read-only`);
    }
    await this.layout.blobs.put(typeof data === 'function' ? await data() : data, {
      expectedDigest: parseDigest(desc.digest),
      expectedSize: desc.size,
      subject: `blob ${desc.digest} for ${this.description}`,
    });
  }

  /**
   * Referrers listed in index.json (image-layout.md allows them there) and in indexes tagged by the
   * referrers tag schema `sha256-<hex>` (distribution-spec § referrers tag schema).
   */
  async referrers(digest: Digest, query: ReferrersQuery = {}): Promise<Descriptor[]> {
    const { manifests } = await this.layout.readIndex();
    const fallbackTag = digest.replace(':', '-');
    const candidates: Descriptor[] = [];
    for (const entry of manifests) {
      if (!isManifestMediaType(entry.mediaType)) continue;
      candidates.push(entry);
      if (entry.annotations?.[Annotation.RefName] === fallbackTag) {
        const index = await this.layout.getManifest(entry.digest, entry.mediaType);
        if (index.kind === 'index') candidates.push(...index.parsed.manifests);
      }
    }
    const found = new Map<Digest, Descriptor>();
    for (const candidate of candidates) {
      if (found.has(candidate.digest) || !isManifestMediaType(candidate.mediaType)) continue;
      const raw = await this.layout.getManifest(candidate.digest, candidate.mediaType);
      if (raw.parsed.subject?.digest !== digest) continue;
      const artifactType = raw.parsed.artifactType ?? (raw.kind === 'manifest' ? raw.parsed.config.mediaType : undefined);
      if (query.artifactType !== undefined && artifactType !== query.artifactType) continue;
      const desc: Descriptor = { mediaType: raw.mediaType, digest: raw.digest, size: raw.bytes.length };
      if (artifactType !== undefined) desc.artifactType = artifactType;
      if (raw.parsed.annotations) desc.annotations = raw.parsed.annotations;
      found.set(raw.digest, desc);
    }
    return [...found.values()];
  }

  async tags(): Promise<string[]> {
    return this.layout.tags();
  }

  async close(options: { discard?: boolean } = {}): Promise<void> {
    this.closed ??= (async () => {
      await this.layout.close();
      await this.onClose?.({ discard: options.discard === true });
    })();
    return this.closed;
  }
}

/** Opens `oci:DIR[:tag]`; in `write` mode the layout is created when the directory is absent or empty. */
export async function openOciLayout(options: OpenOciLayoutOptions): Promise<OciLayoutTarget> {
  const ref = typeof options.ref === 'string' ? parseLayoutRef(options.ref) : (options.ref ?? {});
  const layout = await OciLayout.open(options.dir, options.mode);
  return new OciLayoutTarget({ layout, ref });
}

/** Splits skopeo's `PATH[:tag]` (the first `:` separates, as containers-transports(5) does) with an optional `@digest`. */
export function parseLayoutSpec(spec: string): { path: string; ref: TargetRef } {
  let rest = spec;
  let digest: Digest | undefined;
  const at = /@((?:sha256|sha512):[a-f0-9]+)$/.exec(rest);
  if (at?.[1]) {
    digest = parseDigest(at[1]);
    rest = rest.slice(0, at.index);
  }
  const colon = rest.indexOf(':');
  const path = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? '' : rest.slice(colon + 1);
  if (path === '') throw new KilnError('USAGE', `"${spec}" names no path; use PATH[:tag]`);
  return { path, ref: { tag: tag === '' ? undefined : tag, digest } };
}

/** Parses `tag`, `@digest` or `tag@digest`. */
export function parseLayoutRef(ref: string): TargetRef {
  const at = ref.lastIndexOf('@');
  const maybeDigest = at >= 0 ? ref.slice(at + 1) : '';
  if (at >= 0 && isDigest(maybeDigest)) {
    const tag = ref.slice(0, at);
    return { tag: tag === '' ? undefined : tag, digest: maybeDigest };
  }
  return { tag: ref === '' ? undefined : ref };
}

/** `:tag`, `@digest` or `:tag@digest`, for descriptions. */
export function formatRefSuffix(ref: TargetRef): string {
  return `${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}
