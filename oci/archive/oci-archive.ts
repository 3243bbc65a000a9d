import { stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FsBlobStore, isNotFound } from '../content/fs-blob-store.js';
import { isDigest, type Digest, splitDigest } from '../digest.js';
import { KilnError } from '../errors.js';
import { readStreamLimited } from '../stream-util.js';
import type { TargetRef } from '../target.js';
import { parseIndexFile, parseLayoutHeader } from '../layout/index-file.js';
import { formatRefSuffix, OciLayoutTarget, parseLayoutRef } from '../layout/layout-target.js';
import { type LayoutMode, OciLayout } from '../layout/oci-layout.js';
import { type ArchiveLimits, DEFAULT_ARCHIVE_LIMITS, readTarMembers } from './tar-reader.js';
import { type TarSource, writeTarAtomic } from './tar-writer.js';
import { makeWorkDir, removeWorkDir } from './work-dir.js';

/** Options of `openOciArchive` (and, with a docker reference as `ref`, `openDockerArchive`). */
export interface OpenArchiveOptions {
  file: string;
  /** Tag (ref name) or digest; a string is parsed as `tag`, `@digest` or `tag@digest`. */
  ref?: TargetRef | string | undefined;
  mode: LayoutMode;
  /** Parent of the private work directory the archive is unpacked into or assembled in; default os.tmpdir(). */
  tmpDir?: string | undefined;
  limits?: Partial<ArchiveLimits> | undefined;
}

/**
 * Opens `oci-archive:FILE[:tag]` (a tar of an OCI layout, as skopeo writes). Reading unpacks it into
 * a private temp layout, verifying every blob against its name; writing assembles a temp layout and
 * `close()` writes the tar atomically (`close({ discard: true })` leaves nothing behind).
 */
export async function openOciArchive(options: OpenArchiveOptions): Promise<OciLayoutTarget> {
  const ref = typeof options.ref === 'string' ? parseLayoutRef(options.ref) : (options.ref ?? {});
  const description = `oci-archive:${options.file}${formatRefSuffix(ref)}`;
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits };
  if (options.mode === 'write') await assertWritableDestination(options.file);
  const work = await makeWorkDir('oci-archive', options.tmpDir);
  try {
    if (options.mode === 'read') {
      await extractOciArchive(options.file, work, limits);
      const layout = await OciLayout.open(work, 'read');
      return new OciLayoutTarget({ layout, ref, description, onClose: () => removeWorkDir(work) });
    }
    const layout = await OciLayout.open(work, 'write');
    const onClose = async ({ discard }: { discard: boolean }): Promise<void> => {
      try {
        if (!discard) await writeLayoutTar(layout, options.file, description);
      } finally {
        await removeWorkDir(work);
      }
    };
    return new OciLayoutTarget({ layout, ref, description, onClose });
  } catch (err) {
    await removeWorkDir(work);
    throw err;
  }
}

/** Unpacks an oci-archive into `dir` as a layout: blobs verified by name, index.json and oci-layout validated. */
export async function extractOciArchive(file: string, dir: string, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS): Promise<void> {
  const store = new FsBlobStore({ root: join(dir, 'blobs'), tmpDir: join(dir, '.kiln-tmp') });
  const documents = new Map<string, Buffer>();
  await readTarMembers(file, { limits }, async (member) => {
    if (member.kind !== 'file') return;
    if (member.name === 'oci-layout' || member.name === 'index.json') {
      if (member.size > limits.maxJsonBytes) {
        throw new KilnError('TOO_LARGE', `${file}:${member.name} is ${member.size} bytes, over the ${limits.maxJsonBytes}-byte limit`);
      }
      documents.set(member.name, await readStreamLimited(member.stream, limits.maxJsonBytes, `${file}:${member.name}`));
      return;
    }
    const digest = blobDigest(member.name);
    // Files that are not blobs are not part of the layout; nothing can reference them.
    if (!digest) return;
    await store.put(member.stream, { expectedDigest: digest, expectedSize: member.size, subject: `${file}:${member.name}` });
  });
  const header = documents.get('oci-layout');
  const index = documents.get('index.json');
  if (!header || !index) {
    throw new KilnError('ARCHIVE_INVALID', `${file} is not an oci-archive: it has no ${header ? 'index.json' : 'oci-layout'}`);
  }
  parseLayoutHeader(header, `${file}:oci-layout`);
  parseIndexFile(index, `${file}:index.json`);
  await writeFile(join(dir, 'oci-layout'), header);
  await writeFile(join(dir, 'index.json'), index);
}

/** The digest a `blobs/<alg>/<encoded>` member name stands for, when it is one. */
export function blobDigest(name: string): Digest | undefined {
  const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name);
  const candidate = m ? `${m[1]}:${m[2]}` : '';
  return isDigest(candidate) ? candidate : undefined;
}

/** Writes the layout in `layout.dir` as a tar at `file`, atomically. */
async function writeLayoutTar(layout: OciLayout, file: string, description: string): Promise<void> {
  const index = await layout.readIndex();
  if (index.manifests.length === 0) {
    throw new KilnError('USAGE', `nothing was written to ${description}, so no archive was created`);
  }
  const digests: Digest[] = [];
  for await (const digest of layout.blobs.list()) digests.push(digest);
  const sources: TarSource[] = [
    { name: 'oci-layout', path: join(layout.dir, 'oci-layout') },
    { name: 'index.json', path: join(layout.dir, 'index.json') },
    { name: 'blobs', directory: true },
  ];
  for (const algorithm of [...new Set(digests.map((d) => splitDigest(d)[0]))]) {
    sources.push({ name: `blobs/${algorithm}`, directory: true });
    for (const d of digests.filter((x) => splitDigest(x)[0] === algorithm)) {
      sources.push({ name: `blobs/${algorithm}/${splitDigest(d)[1]}`, path: layout.blobs.path(d) });
    }
  }
  await writeTarAtomic(file, sources);
}

/** Fails early, before any work, when the archive's directory is missing or the path is a directory. */
export async function assertWritableDestination(file: string): Promise<void> {
  try {
    if (!(await stat(dirname(file))).isDirectory()) throw new KilnError('USAGE', `${dirname(file)} is not a directory`);
  } catch (err) {
    if (isNotFound(err)) throw new KilnError('NOT_FOUND', `cannot write ${file}: directory ${dirname(file)} does not exist`, { cause: err });
    throw err;
  }
  try {
    if ((await stat(file)).isDirectory()) throw new KilnError('USAGE', `cannot write archive ${file}: it is a directory`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
