import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Digest, digestOf } from '../../../oci/digest.js';
import type { RepositorySnapshot, RepositorySweep } from '../../../registry/db/gc-store.js';
import type { ManifestRecord, MetadataStore } from '../../../registry/db/metadata-store.js';
import type { OpenedStore } from './metadata-store.contract.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const blob = (name: string): Digest => digestOf(`gc blob ${name}`);
const NOTHING: RepositorySweep = { tags: [], manifests: [], links: [] };

function record(repository: string, content: string, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  const bytes = Buffer.from(`{"schemaVersion":2,"gc":${JSON.stringify(content)}}`);
  return { repository, digest: digestOf(bytes), mediaType: MANIFEST, bytes, blobs: [], manifests: [], createdAt: 1_700_000_000_000, ...extra };
}

/** Reads a repository the way garbage collection does, removing nothing. */
async function snapshot(store: MetadataStore, repository: string): Promise<RepositorySnapshot> {
  let seen: RepositorySnapshot | undefined;
  await store.sweepRepository(repository, (s) => ((seen = s), NOTHING), { dryRun: true });
  if (!seen) throw new Error('decide was not called');
  return seen;
}

/** The garbage-collection part of the MetadataStore contract (gc-store.ts). */
export function describeGcStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`GarbageCollectionStore contract: ${name}`, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(() => cleanup());

    it('snapshots tags, manifests with their references, and links with their age (renewed by linking again)', async () => {
      const before = Date.now();
      await store.linkBlob('r', blob('config'), 3);
      const child = record('r', 'child', { blobs: [blob('config')] });
      const index = record('r', 'index', { manifests: [child.digest], subject: digestOf('subject'), createdAt: 5 });
      await store.putManifest(child);
      await store.putManifest(index, 'v1');
      const s = await snapshot(store, 'r');
      expect(s.repository).toBe('r');
      expect(s.tags).toEqual([{ tag: 'v1', digest: index.digest, updatedAt: expect.any(Number) }]);
      expect(s.tags[0]?.updatedAt).toBeGreaterThanOrEqual(before);
      expect(s.manifests).toEqual(
        expect.arrayContaining([
          { digest: child.digest, createdAt: child.createdAt, subject: undefined, blobs: [blob('config')], manifests: [] },
          { digest: index.digest, createdAt: 5, subject: digestOf('subject'), blobs: [], manifests: [child.digest] },
        ]),
      );
      const first = s.links[0]?.linkedAt ?? 0;
      expect(s.links).toEqual([{ digest: blob('config'), size: 3, linkedAt: first }]);
      expect(first).toBeGreaterThanOrEqual(before);
      await new Promise((r) => setTimeout(r, 5));
      await store.linkBlob('r', blob('config'), 3);
      expect((await snapshot(store, 'r')).links[0]?.linkedAt).toBeGreaterThan(first);
    });

    it('sweeps what decide returns in one transaction (a dry run removes nothing) and moves the generation', async () => {
      const a = record('s', 'a', { blobs: [blob('a')] });
      const b = record('s', 'b');
      await store.linkBlob('s', blob('a'), 1);
      await store.linkBlob('s', blob('loose'), 1);
      await store.putManifest(a, 'keep');
      await store.putManifest(b, 'old');
      await store.putManifest(b, 'older');
      const plan: RepositorySweep = { tags: ['old'], manifests: [b.digest], links: [blob('loose')] };
      const generation = await store.gcGeneration();
      expect(await store.sweepRepository('s', () => plan, { dryRun: true })).toEqual(plan);
      expect(await store.listTags('s')).toEqual(['keep', 'old', 'older']);
      expect(await store.gcGeneration()).toBe(generation);
      expect(await store.sweepRepository('s', () => plan)).toEqual(plan);
      expect(await store.listTags('s')).toEqual(['keep']);
      expect(await store.getManifest('s', b.digest)).toBeUndefined();
      expect(await store.blobSize('s', blob('loose'))).toBeUndefined();
      expect(await store.blobSize('s', blob('a'))).toBe(1);
      expect(await store.gcGeneration()).toBeGreaterThan(generation);
      const moved = await store.gcGeneration();
      await store.linkBlob('s', blob('loose2'), 1);
      await store.sweepRepository('s', () => ({ ...NOTHING, links: [blob('loose2')] }));
      expect(await store.gcGeneration()).toBe(moved);
      await store.sweepRepository('s', () => ({ tags: [], manifests: [a.digest], links: [blob('a')] }));
      expect(await store.repositoryExists('s')).toBe(false);
    });

    it('refuses a manifest referencing a swept link or manifest until it is back (MANIFEST_BLOB_UNKNOWN)', async () => {
      await store.linkBlob('t', blob('layer'), 4);
      await store.sweepRepository('t', () => ({ ...NOTHING, links: [blob('layer')] }));
      const m = record('t', 'late', { blobs: [blob('layer')] });
      await expect(store.putManifest(m, 'v1')).rejects.toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
      expect(await store.getManifest('t', m.digest)).toBeUndefined();
      // Another repository is unaffected; the same one accepts it once the blob is linked again.
      await store.putManifest({ ...m, repository: 'elsewhere' });
      await store.linkBlob('t', blob('layer'), 4);
      await store.putManifest(m, 'v1');
      expect(await store.resolveTag('t', 'v1')).toBe(m.digest);

      const child = record('t', 'child');
      await store.putManifest(child);
      await store.sweepRepository('t', () => ({ ...NOTHING, manifests: [child.digest] }));
      const index = record('t', 'index', { manifests: [child.digest] });
      await expect(store.putManifest(index)).rejects.toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN' });
      await store.putManifest(child);
      await store.putManifest(index);
      expect(await store.getManifest('t', index.digest)).toBeDefined();
    });

    it('deletes blob bytes only when nothing links, lists or may be committing them, and then refuses new links', async () => {
      let removed = 0;
      const remove = async (): Promise<boolean> => (removed++, true);
      await store.linkBlob('u', blob('linked'), 10);
      expect(await store.deleteBlobIfUnreferenced(blob('linked'), 10, remove)).toBe(false);
      await store.putManifest(record('u', 'lists', { blobs: [blob('listed')] }));
      expect(await store.deleteBlobIfUnreferenced(blob('listed'), 10, remove)).toBe(false);
      await store.createUpload({ id: 'up', repository: 'u', offset: 77, createdAt: 1, updatedAt: 1 });
      expect(await store.deleteBlobIfUnreferenced(blob('committing'), 77, remove)).toBe(false);
      expect(removed).toBe(0);
      expect(await store.deleteBlobIfUnreferenced(blob('free'), 78, remove)).toBe(true);
      expect(removed).toBe(1);
      expect(await store.deleteBlobIfUnreferenced(blob('gone'), 1, async () => false)).toBe(false);
      await expect(store.deleteBlobIfUnreferenced(blob('fails'), 1, async () => Promise.reject(new Error('EIO')))).rejects.toThrow('EIO');

      // A mount that checked the bytes before they went must not link them now...
      await expect(store.linkBlob('v', blob('free'), 78)).rejects.toThrow();
      expect(await store.blobSize('v', blob('free'))).toBeUndefined();
      // ...but an upload of the same bytes (its session still recorded) may, and clears the tombstone.
      await store.createUpload({ id: 'up2', repository: 'v', offset: 78, createdAt: 1, updatedAt: 1 });
      await store.linkBlob('v', blob('free'), 78);
      await store.deleteUpload('v', 'up2');
      await store.linkBlob('w', blob('free'), 78);
      expect(await store.blobSize('w', blob('free'))).toBe(78);
    });

    it('lists the references of a blob', async () => {
      await store.linkBlob('b', blob('x'), 1);
      await store.linkBlob('a', blob('x'), 1);
      const m = record('a', 'm', { blobs: [blob('x'), blob('x')] });
      await store.putManifest(m);
      expect(await store.blobReferences(blob('x'))).toEqual({ links: ['a', 'b'], manifests: [{ repository: 'a', digest: m.digest }] });
      expect(await store.blobReferences(blob('none'))).toEqual({ links: [], manifests: [] });
    });

    it('gives the GC lock to one owner at a time, re-entrant, taken over when stale', async () => {
      expect(await store.lockGc('one', 1000, 0)).toBeUndefined();
      expect(await store.lockGc('one', 2000, 0)).toBeUndefined();
      expect(await store.lockGc('two', 3000, 1000)).toEqual({ owner: 'one', heartbeatAt: 2000 });
      expect(await store.lockGc('two', 9000, 2500)).toBeUndefined();
      await store.unlockGc('one', 0);
      expect(await store.lockGc('one', 9100, 0)).toEqual({ owner: 'two', heartbeatAt: 9000 });
      await store.unlockGc('two', 0);
      expect(await store.lockGc('one', 9200, 0)).toBeUndefined();
      await store.unlockGc('one', Date.now() + 1);
    });
  });
}
