import { pipeline } from 'node:stream';
import { byteLimit, compressionOf, decompressStream } from '../compression.js';
import type { Descriptor } from '../descriptor.js';
import { type Digest, digestHex, digestOf } from '../digest.js';
import { KilnError } from '../errors.js';
import type { RawManifest } from '../manifest.js';
import { MAX_MANIFEST_BYTES } from '../manifest.js';
import { readStreamLimited } from '../stream-util.js';
import { OciLayoutTarget } from '../layout/layout-target.js';
import type { OciLayout } from '../layout/oci-layout.js';
import { familiarReference, parseConfigRootfs, splitFamiliar, type DockerSaveEntry } from './docker-save-format.js';
import { type TarSource, writeTarAtomic } from './tar-writer.js';
import { removeWorkDir } from './work-dir.js';

/** Options of a `DockerArchiveWriter`. */
export interface DockerArchiveWriterOptions {
  layout: OciLayout;
  file: string;
  /** Normalised RepoTags (`app:1`). */
  repoTags: string[];
  description: string;
  /** Largest uncompressed layer accepted. */
  maxLayerBytes: number;
}

/**
 * `docker-archive:FILE[:ref]` opened for writing: blobs and the one image manifest collect in a temp
 * layout; `close()` writes the classic `docker save` tar (manifest.json, repositories,
 * `<config-hex>.json`, `<diff-id-hex>/layer.tar` uncompressed) atomically.
 */
export class DockerArchiveWriter extends OciLayoutTarget {
  private readonly file: string;
  private readonly repoTags: string[];
  private readonly maxLayerBytes: number;
  private image: RawManifest | undefined;

  constructor(options: DockerArchiveWriterOptions) {
    super({
      layout: options.layout,
      ref: options.repoTags[0] !== undefined ? { tag: options.repoTags[0] } : {},
      description: options.description,
      onClose: ({ discard }) => this.finish(discard),
    });
    this.file = options.file;
    this.repoTags = [...options.repoTags];
    this.maxLayerBytes = options.maxLayerBytes;
  }

  /** Accepts exactly one image manifest; an index, a referrer or a second image is refused. */
  override async putManifest(manifest: RawManifest, tag?: string): Promise<void> {
    if (manifest.kind === 'index') {
      throw new KilnError('UNSUPPORTED', `${this.description}: a docker-archive holds one image (a single platform), but got an image index ${manifest.digest}`, {
        hint: 'choose one platform, e.g. --platform linux/amd64',
      });
    }
    if (manifest.parsed.subject) {
      throw new KilnError('UNSUPPORTED', `${this.description}: a docker-archive cannot hold referrers (manifest ${manifest.digest} has a subject)`);
    }
    if (this.image && this.image.digest !== manifest.digest) {
      throw new KilnError('UNSUPPORTED', `${this.description}: a docker-archive holds one image; already got ${this.image.digest}, now ${manifest.digest}`);
    }
    // A bare tag ("v1") has no repository to go with; docker RepoTags need name:tag.
    if (tag !== undefined && splitFamiliar(tag).name !== tag) {
      const familiar = familiarReference(tag);
      if (!this.repoTags.includes(familiar)) this.repoTags.push(familiar);
    }
    await super.putManifest(manifest, this.repoTags[0]);
    this.image = manifest;
  }

  private async finish(discard: boolean): Promise<void> {
    try {
      if (!discard) await this.writeArchive();
    } finally {
      await removeWorkDir(this.layout.dir);
    }
  }

  private async writeArchive(): Promise<void> {
    const image = this.image;
    if (!image || image.kind !== 'manifest') {
      throw new KilnError('USAGE', `no image was written to ${this.description}, so no archive was created`);
    }
    const manifest = image.parsed;
    const configBytes = await this.readConfig(manifest.config);
    const { diffIds } = parseConfigRootfs(configBytes, `config ${manifest.config.digest}`);
    if (diffIds.length !== manifest.layers.length) {
      throw new KilnError('VALIDATION', `image ${image.digest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
    }
    const layerFiles = new Map<Digest, string>();
    for (const [i, layer] of manifest.layers.entries()) {
      const diffId = await this.uncompressedLayer(layer, diffIds[i] as Digest, i);
      layerFiles.set(diffId, this.layout.blobs.path(diffId));
    }
    const configName = `${digestHex(digestOf(configBytes))}.json`;
    const layerPaths = diffIds.map((d) => `${digestHex(d)}/layer.tar`);
    const entry: DockerSaveEntry = { Config: configName, RepoTags: this.repoTags, Layers: layerPaths };
    const sources: TarSource[] = [
      { name: 'manifest.json', data: Buffer.from(`${JSON.stringify([entry])}\n`) },
    ];
    const top = diffIds[diffIds.length - 1];
    if (this.repoTags.length > 0 && top !== undefined) {
      sources.push({ name: 'repositories', data: Buffer.from(`${JSON.stringify(repositories(this.repoTags, digestHex(top)))}\n`) });
    }
    sources.push({ name: configName, data: configBytes });
    for (const [diffId, path] of layerFiles) {
      sources.push({ name: digestHex(diffId), directory: true });
      sources.push({ name: `${digestHex(diffId)}/layer.tar`, path });
    }
    await writeTarAtomic(this.file, sources);
  }

  private async readConfig(desc: Descriptor): Promise<Buffer> {
    if (desc.size > MAX_MANIFEST_BYTES) throw new KilnError('TOO_LARGE', `config ${desc.digest} is ${desc.size} bytes, over the 4 MiB limit`);
    if ((await this.statBlob(desc.digest)) === undefined) {
      throw new KilnError('BLOB_UNKNOWN', `config ${desc.digest} was never written to ${this.description}`);
    }
    return readStreamLimited(await this.getBlob(desc), MAX_MANIFEST_BYTES, `config ${desc.digest}`);
  }

  /** Docker archives hold uncompressed layers: decompress (verifying) when the layer was compressed. */
  private async uncompressedLayer(layer: Descriptor, diffId: Digest, index: number): Promise<Digest> {
    if ((await this.statBlob(layer.digest)) === undefined) {
      throw new KilnError('BLOB_UNKNOWN', `layer ${layer.digest} was never written to ${this.description}`);
    }
    if (!/tar/.test(layer.mediaType)) {
      throw new KilnError('UNSUPPORTED', `${this.description}: layer ${index} has media type ${layer.mediaType}, not a tar layer`);
    }
    const compression = compressionOf(layer.mediaType);
    if (compression === 'none') {
      if (layer.digest !== diffId) {
        throw new KilnError('VALIDATION', `uncompressed layer ${index} is ${layer.digest} but the config's diff_id is ${diffId}`);
      }
      return diffId;
    }
    const source = await this.getBlob(layer);
    const decompressed = pipeline(source, decompressStream(compression), byteLimit(this.maxLayerBytes, `layer ${layer.digest} decompressed`), () => undefined);
    await this.layout.blobs.put(decompressed, { expectedDigest: diffId, subject: `layer ${index} (${layer.digest}) decompressed, against diff_id` });
    return diffId;
  }
}

/** The `repositories` file: `{ name: { tag: top-layer-id } }`, as docker save writes it. */
function repositories(repoTags: string[], topLayerId: string): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const ref of repoTags) {
    const { name, tag } = splitFamiliar(ref);
    out[name] = { ...out[name], [tag]: topLayerId };
  }
  return out;
}
