import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Descriptor } from '../../oci/descriptor.js';
import { digestOf, type Digest } from '../../oci/digest.js';
import { parseManifest, type RawManifest } from '../../oci/manifest.js';
import { readStreamLimited } from '../../oci/stream-util.js';
import type { Target } from '../../oci/target.js';
import { openTarget } from '../../oci/transports.js';
import { startDistribution } from '../support/distribution.js';
import { startServe } from '../support/serve.js';

/** A place images live for the sign/verify tests: Kiln's registry, CNCF Distribution, or OCI layouts. */
export interface Store {
  name: string;
  /** The spec of `repo` at `ref` (`:tag` or `@digest`) as the CLI takes it. */
  spec(repo: string, ref: string): string;
  /** The `--identity` a layout needs; undefined for registries (they name their repository). */
  identity(repo: string): string | undefined;
  /** The repository signatures name (`registry/repo`). */
  repository(repo: string): string;
  stop(): Promise<void>;
}

/** Kiln's own registry (`kiln serve`), as a real process with its data in a temp dir. */
export async function kilnStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-signer-serve-'));
  const server = await startServe(['--addr', '127.0.0.1:0', '--data', join(dir, 'data')]);
  return registryStore('kiln serve', server.host, async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });
}

/** Debian's CNCF Distribution registry (no referrers API: the tag-schema fallback path). */
export async function distributionStore(): Promise<Store> {
  const registry = await startDistribution();
  return registryStore('CNCF distribution', registry.host, () => registry.stop());
}

/** One OCI layout directory per repository under a temp dir. */
export async function layoutStore(): Promise<Store> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-signer-layout-'));
  return {
    name: 'OCI layout',
    spec: (repo, ref) => `oci:${join(dir, repo.replaceAll('/', '_'))}${ref.startsWith('@') ? ref : `:${ref.slice(1)}`}`,
    identity: (repo) => `registry.example/${repo}`,
    repository: (repo) => `registry.example/${repo}`,
    stop: () => rm(dir, { recursive: true, force: true }),
  };
}

function registryStore(name: string, host: string, stop: () => Promise<void>): Store {
  return {
    name,
    spec: (repo, ref) => `${host}/${repo}${ref}`,
    identity: () => undefined,
    repository: (repo) => `${host}/${repo}`,
    stop,
  };
}

/** Opens `spec` for writing, runs `fn`, closes. */
export async function withTarget<T>(spec: string, fn: (target: Target) => Promise<T>): Promise<T> {
  const target = await openTarget(spec, { mode: 'write' });
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

/** The bytes of a small blob. */
export async function blobBytes(target: Target, desc: Descriptor): Promise<Buffer> {
  return readStreamLimited(await target.getBlob(desc), 1 << 20, desc.digest);
}

/** Pushes `bytes` as a blob and returns its descriptor. */
export async function pushBlob(target: Target, mediaType: string, bytes: Buffer, annotations?: Record<string, string>): Promise<Descriptor> {
  const desc: Descriptor = { mediaType, digest: digestOf(bytes), size: bytes.length, ...(annotations ? { annotations } : {}) };
  await target.putBlob(desc, Readable.from([bytes]));
  return desc;
}

/** Re-serialises a manifest document after `edit` changed it, and pushes it under `tag`. */
export async function pushEdited(target: Target, manifest: RawManifest, tag: string, edit: (doc: Record<string, unknown>) => void): Promise<RawManifest> {
  const doc = JSON.parse(manifest.bytes.toString()) as Record<string, unknown>;
  edit(doc);
  const edited = parseManifest(Buffer.from(JSON.stringify(doc)), manifest.mediaType);
  await target.putManifest(edited, tag);
  return edited;
}

/** Flips one bit of the byte at `index`. */
export function flipByte(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

/** `sha256:…` → `@sha256:…`, for specs. */
export function at(digest: Digest): string {
  return `@${digest}`;
}
