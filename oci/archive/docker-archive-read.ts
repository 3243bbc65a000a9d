import { pipeline } from 'node:stream';
import { basename } from 'node:path';
import { byteLimit, decompressStream, detectCompression } from '../compression.js';
import type { Descriptor } from '../descriptor.js';
import { type Digest, digestOf } from '../digest.js';
import type { BlobInfo } from '../content/blob-store.js';
import { KilnError, errorMessage } from '../errors.js';
import { parseManifest } from '../manifest.js';
import { MediaType } from '../media-types.js';
import { readStreamLimited } from '../stream-util.js';
import { OciLayout } from '../layout/oci-layout.js';
import { blobDigest } from './oci-archive.js';
import { type ArchiveLimits, readTarMembers } from './tar-reader.js';
import { dockerSchema2Bytes, familiarReference, parseConfigRootfs, parseDockerManifestJson } from './docker-save-format.js';

/** One image of a docker-archive, as stored in the unpacked layout. */
export interface DockerArchiveImage {
  /** Digest of the Docker schema2 manifest built for it. */
  digest: Digest;
  /** Its RepoTags, normalised (`app:1`). */
  tags: string[];
}

/** Files of the archive by member name, stored as blobs; symlink aliases resolved separately. */
interface Members {
  files: Map<string, BlobInfo>;
  links: Map<string, string>;
}

/**
 * Unpacks a `docker save` archive (classic `<id>/layer.tar` or the newer `blobs/sha256/…` form) into
 * a layout at `dir`: every member is stored as a verified blob, each image becomes a Docker schema2
 * manifest whose layers are the uncompressed tars (digest = diff_id), tagged with its RepoTags.
 */
export async function extractDockerArchive(file: string, dir: string, limits: ArchiveLimits): Promise<DockerArchiveImage[]> {
  const layout = await OciLayout.open(dir, 'write');
  const members: Members = { files: new Map(), links: new Map() };
  let manifestJson: Buffer | undefined;
  // Symlinks are allowed only as aliases between members (containers/image writes `<id>/layer.tar`
  // links to `<diff_id>.tar`); the reader has already refused any that point outside the archive,
  // and they are never created on disk.
  await readTarMembers(file, { limits, allowSymlinks: true }, async (member) => {
    if (member.kind === 'directory') return;
    if (member.kind === 'symlink') {
      members.links.set(member.name, member.target);
      return;
    }
    if (member.name === 'manifest.json') {
      if (member.size > limits.maxJsonBytes) {
        throw new KilnError('TOO_LARGE', `${file}:manifest.json is ${member.size} bytes, over the ${limits.maxJsonBytes}-byte limit`);
      }
      manifestJson = await readStreamLimited(member.stream, limits.maxJsonBytes, `${file}:manifest.json`);
      return;
    }
    const info = await layout.blobs.put(member.stream, {
      expectedDigest: blobDigest(member.name),
      expectedSize: member.size,
      subject: `${file}:${member.name}`,
    });
    members.files.set(member.name, info);
  });
  if (!manifestJson) throw new KilnError('ARCHIVE_INVALID', `${file} is not a docker-archive: it has no manifest.json`);

  const images: DockerArchiveImage[] = [];
  for (const [i, entry] of parseDockerManifestJson(manifestJson, file).entries()) {
    const where = `${file}:manifest.json [${i}]`;
    if (entry.LayerSources) throw new KilnError('UNSUPPORTED', `${where} has foreign layers (LayerSources), which Kiln does not read`);
    const configInfo = lookup(file, members, entry.Config);
    if (configInfo.size > limits.maxJsonBytes) {
      throw new KilnError('TOO_LARGE', `${file}:${entry.Config} is ${configInfo.size} bytes, over the ${limits.maxJsonBytes}-byte limit`);
    }
    const configBytes = await readStreamLimited(await layout.blobs.get(configInfo.digest), limits.maxJsonBytes, `${file}:${entry.Config}`);
    // Classic archives name the config by its own sha256; a mismatch means the file was altered.
    const named = /^([a-f0-9]{64})\.json$/.exec(basename(entry.Config))?.[1];
    const actual = digestOf(configBytes);
    if (named && actual !== `sha256:${named}`) {
      throw new KilnError('DIGEST_MISMATCH', `${file}:${entry.Config} has digest ${actual}, not the sha256:${named} its name promises`);
    }
    const { diffIds } = parseConfigRootfs(configBytes, `${file}:${entry.Config}`);
    if (diffIds.length !== entry.Layers.length) {
      throw new KilnError('ARCHIVE_INVALID', `${where} lists ${entry.Layers.length} layers but its config has ${diffIds.length} diff_ids`);
    }
    const layers: Descriptor[] = [];
    for (const [j, path] of entry.Layers.entries()) {
      const info = await uncompressedLayer(layout, lookup(file, members, path), diffIds[j] as Digest, `${file}:${path}`, limits);
      layers.push({ mediaType: MediaType.DockerLayer, size: info.size, digest: info.digest });
    }
    const config: Descriptor = { mediaType: MediaType.DockerConfig, size: configBytes.length, digest: actual };
    const raw = parseManifest(dockerSchema2Bytes(config, layers), MediaType.DockerManifest, `manifest of ${where}`);
    const tags = (entry.RepoTags ?? []).map((t) => normaliseRepoTag(t, where));
    if (tags.length === 0) await layout.putManifest(raw);
    for (const tag of tags) await layout.putManifest(raw, tag);
    images.push({ digest: raw.digest, tags });
  }
  await layout.close();
  return images;
}

/** The stored blob a manifest.json path names, following in-archive symlink aliases. */
function lookup(file: string, members: Members, path: string): BlobInfo {
  let name = path.split('/').filter((p) => p !== '' && p !== '.').join('/');
  for (let hops = 0; hops < 16; hops++) {
    const info = members.files.get(name);
    if (info) return info;
    const next = members.links.get(name);
    if (next === undefined) break;
    name = next;
  }
  throw new KilnError('ARCHIVE_INVALID', `${file}: manifest.json names ${path}, which is not a file in the archive`);
}

/**
 * The uncompressed layer with digest `diffId`: the stored member itself when it matches, or the
 * member decompressed (gzip/zstd, as some newer `docker save` outputs hold) and verified.
 */
async function uncompressedLayer(layout: OciLayout, member: BlobInfo, diffId: Digest, subject: string, limits: ArchiveLimits): Promise<BlobInfo> {
  if (member.digest === diffId) return member;
  const head = member.size === 0 ? Buffer.alloc(0) : await readStreamLimited(await layout.blobs.get(member.digest, { start: 0, end: Math.min(3, member.size - 1) }), 4, subject);
  const compression = detectCompression(head);
  if (compression === 'none') {
    throw new KilnError('DIGEST_MISMATCH', `${subject} has digest ${member.digest}, but the config's diff_id for it is ${diffId}`);
  }
  const source = await layout.blobs.get(member.digest);
  const decompressed = pipeline(source, decompressStream(compression), byteLimit(limits.maxMemberBytes, `${subject} decompressed`), () => undefined);
  try {
    return await layout.blobs.put(decompressed, { expectedDigest: diffId, subject: `${subject} (decompressed)` });
  } catch (err) {
    if (err instanceof KilnError) throw err;
    throw new KilnError('ARCHIVE_INVALID', `${subject}: cannot decompress (${errorMessage(err)})`, { cause: err });
  }
}

function normaliseRepoTag(tag: string, where: string): string {
  try {
    return familiarReference(tag);
  } catch (err) {
    throw new KilnError('ARCHIVE_INVALID', `${where}: RepoTag "${tag}" is not a valid reference (${errorMessage(err)})`, { cause: err });
  }
}
