import type { Descriptor } from '../descriptor.js';
import { isDigest, type Digest } from '../digest.js';
import { KilnError } from '../errors.js';
import { MediaType } from '../media-types.js';
import { familiarString, parseReference } from '../reference.js';

/** One image in a `docker save` manifest.json. */
export interface DockerSaveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  /** Foreign layers (Windows base layers) by diff_id; kept only to refuse them clearly. */
  LayerSources?: Record<string, Descriptor>;
}

/** The parts of an image config the archive formats rely on (image-spec config.md § rootfs). */
export interface ConfigRootfs {
  diffIds: Digest[];
}

/**
 * Normalises a reference the way docker names images in RepoTags: `docker.io/library/app:1` and
 * `app` become `app:1` and `app:latest`; other registries keep their host.
 */
export function familiarReference(input: string): string {
  const ref = parseReference(input);
  if (ref.digest !== undefined) {
    throw new KilnError('USAGE', `docker-archive references name a tag, not a digest: "${input}"`);
  }
  return familiarString({ registry: ref.registry, repository: ref.repository, tag: ref.tag ?? 'latest' });
}

/** `name:tag` split at the tag's colon (the last one after the last slash). */
export function splitFamiliar(ref: string): { name: string; tag: string } {
  const colon = ref.lastIndexOf(':');
  if (colon <= ref.lastIndexOf('/')) return { name: ref, tag: 'latest' };
  return { name: ref.slice(0, colon), tag: ref.slice(colon + 1) };
}

/** Parses and validates manifest.json; errors name the archive and the field. */
export function parseDockerManifestJson(bytes: Buffer, archive: string): DockerSaveEntry[] {
  const where = `${archive}:manifest.json`;
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('ARCHIVE_INVALID', `${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(doc) || doc.length === 0) throw new KilnError('ARCHIVE_INVALID', `${where} must be a non-empty array of images`);
  return doc.map((value: unknown, i): DockerSaveEntry => {
    const e = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (typeof e.Config !== 'string') throw new KilnError('ARCHIVE_INVALID', `${where}: [${i}].Config must be a string`);
    if (!isStrings(e.Layers)) throw new KilnError('ARCHIVE_INVALID', `${where}: [${i}].Layers must be an array of strings`);
    if (e.RepoTags !== undefined && e.RepoTags !== null && !isStrings(e.RepoTags)) {
      throw new KilnError('ARCHIVE_INVALID', `${where}: [${i}].RepoTags must be an array of strings`);
    }
    const entry: DockerSaveEntry = { Config: e.Config, RepoTags: (e.RepoTags as string[] | null | undefined) ?? null, Layers: e.Layers };
    if (typeof e.LayerSources === 'object' && e.LayerSources !== null && Object.keys(e.LayerSources).length > 0) {
      entry.LayerSources = e.LayerSources as Record<string, Descriptor>;
    }
    return entry;
  });
}

/** Reads `rootfs.diff_ids` out of config bytes; errors name `subject` and the field. */
export function parseConfigRootfs(bytes: Buffer, subject: string): ConfigRootfs {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new KilnError('VALIDATION', `${subject} is not valid JSON: ${(err as Error).message}`);
  }
  const rootfs = typeof doc === 'object' && doc !== null ? (doc as { rootfs?: unknown }).rootfs : undefined;
  const diffIds = typeof rootfs === 'object' && rootfs !== null ? (rootfs as { diff_ids?: unknown }).diff_ids : undefined;
  if (!Array.isArray(diffIds) || !diffIds.every(isDigest)) {
    throw new KilnError('VALIDATION', `${subject}: rootfs.diff_ids must be an array of digests`);
  }
  return { diffIds };
}

/** Docker schema2 manifest bytes, compact, fields in Go's encoding/json order (mediaType, size, digest) as docker emits them. */
export function dockerSchema2Bytes(config: Descriptor, layers: Descriptor[]): Buffer {
  const d = (x: Descriptor): { mediaType: string; size: number; digest: string } => ({ mediaType: x.mediaType, size: x.size, digest: x.digest });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.DockerManifest, config: d(config), layers: layers.map(d) }));
}
