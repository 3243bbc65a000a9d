import { expect } from 'vitest';
import { type Digest, digestOf } from '../../../oci/digest.js';
import { MediaType } from '../../../oci/media-types.js';
import type { MetadataStore } from '../../../registry/db/metadata-store.js';
import type { FsBlobStore } from '../../../oci/content/fs-blob-store.js';
import { imageManifest, putManifest } from '../helpers.js';

/** A manifest pushed to a test registry: its digest, bytes and the blobs it lists. */
export interface Pushed {
  digest: Digest;
  bytes: Buffer;
  mediaType: string;
  size: number;
  blobs: Digest[];
}

/** Pushes a config + one layer image and its manifest under `reference` (a tag or its own digest when omitted). */
export async function pushImage(url: string, name: string, reference?: string, options: Parameters<typeof imageManifest>[2] = {}): Promise<Pushed> {
  const m = await imageManifest(url, name, options);
  const res = await putManifest(url, name, reference ?? m.digest, m.bytes, m.mediaType);
  expect(res.status, await res.text()).toBe(201);
  const doc = JSON.parse(m.bytes.toString()) as { config: { digest: Digest }; layers: Array<{ digest: Digest }> };
  return { digest: m.digest, bytes: m.bytes, mediaType: m.mediaType, size: m.bytes.length, blobs: [doc.config.digest, ...doc.layers.map((l) => l.digest)] };
}

/** Pushes an OCI index of `children` under `reference`. */
export async function pushIndex(url: string, name: string, reference: string, children: Pushed[]): Promise<Pushed> {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: children.map((c, i) => ({ mediaType: c.mediaType, digest: c.digest, size: c.size, platform: { os: 'linux', architecture: `arch${i}` } })),
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const res = await putManifest(url, name, reference, bytes, MediaType.OciIndex);
  expect(res.status, await res.text()).toBe(201);
  return { digest: digestOf(bytes), bytes, mediaType: MediaType.OciIndex, size: bytes.length, blobs: [] };
}

/** Status of a manifest GET by tag or digest. */
export async function manifestStatus(url: string, name: string, reference: string): Promise<number> {
  const res = await fetch(`${url}/v2/${name}/manifests/${reference}`);
  await res.arrayBuffer();
  return res.status;
}

/** Fetches a blob through the API and checks its digest; returns the status. */
export async function blobStatus(url: string, name: string, digest: Digest): Promise<number> {
  const res = await fetch(`${url}/v2/${name}/blobs/${digest}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (res.status === 200) expect(digestOf(bytes)).toBe(digest);
  return res.status;
}

/**
 * The registry's invariant: every tag resolves to a stored manifest, and every blob any stored manifest
 * lists is linked in its repository and present with the right bytes. Returns how many manifests it checked.
 */
export async function expectConsistent(url: string, metadata: MetadataStore, blobs: FsBlobStore): Promise<number> {
  let manifests = 0;
  for (const repository of await metadata.listRepositories()) {
    for (const tag of (await metadata.listTags(repository)) ?? []) {
      const digest = await metadata.resolveTag(repository, tag);
      expect(digest, `${repository}:${tag}`).toBeDefined();
      expect(await manifestStatus(url, repository, tag), `${repository}:${tag}`).toBe(200);
    }
    await metadata.sweepRepository(
      repository,
      (snapshot) => {
        for (const m of snapshot.manifests) {
          manifests++;
          for (const d of m.blobs) expect(snapshot.links.map((l) => l.digest), `${repository}@${m.digest} lists ${d}`).toContain(d);
        }
        return { tags: [], manifests: [], links: [] };
      },
      { dryRun: true },
    );
    for (const tag of (await metadata.listTags(repository)) ?? []) {
      const digest = (await metadata.resolveTag(repository, tag)) as Digest;
      const record = await metadata.getManifest(repository, digest);
      for (const d of record?.blobs ?? []) {
        expect(await blobs.stat(d), `${repository}:${tag} blob ${d}`).toBeDefined();
        expect(await blobStatus(url, repository, d), `${repository}:${tag} blob ${d}`).toBe(200);
      }
    }
  }
  return manifests;
}

/** Waits `ms` so that everything written so far is strictly older than "now". */
export function tick(ms = 5): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
