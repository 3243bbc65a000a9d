import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../oci/digest.js';
import { isKilnError } from '../../../oci/errors.js';
import type { ManifestRecord, MetadataStore } from '../../../registry/db/metadata-store.js';
import { describeGcStoreContract } from './gc-store.contract.js';

/** What a backend's test gives the contract: a fresh, empty store and a way to dispose of it. */
export interface OpenedStore {
  store: MetadataStore;
  cleanup(): Promise<void>;
}

const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const blob = (name: string): Digest => digestOf(`blob ${name}`);

/** A manifest record whose bytes (and so digest) are derived from `content`; bytes include non-UTF-8 octets. */
export function manifestRecord(repository: string, content: string, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  const bytes = Buffer.concat([Buffer.from(`{"schemaVersion":2,"x":${JSON.stringify(content)}}\r\n`), Buffer.from([0x00, 0xff, 0xfe])]);
  return { repository, digest: digestOf(bytes), mediaType: MANIFEST, bytes, blobs: [], manifests: [], createdAt: 1_700_000_000_000, ...extra };
}

/** The behaviour every MetadataStore backend must have (SQLite now, PostgreSQL later). */
export function describeMetadataStoreContract(name: string, open: () => Promise<OpenedStore>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    let store: MetadataStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await open());
    });
    afterEach(() => cleanup());

    it('links blobs idempotently, reports size and use, and unlinks them', async () => {
      expect(await store.repositoryExists('lib/a')).toBe(false);
      await store.linkBlob('lib/a', blob('1'), 10);
      await store.linkBlob('lib/a', blob('1'), 10);
      expect(await store.blobSize('lib/a', blob('1'))).toBe(10);
      expect(await store.blobSize('lib/b', blob('1'))).toBeUndefined();
      expect(await store.repositoryExists('lib/a')).toBe(true);
      expect(await store.blobInUse(blob('1'))).toBe(true);
      expect(await store.blobInUse(blob('2'))).toBe(false);
      expect(await store.unlinkBlob('lib/a', blob('1'))).toBe(true);
      expect(await store.unlinkBlob('lib/a', blob('1'))).toBe(false);
      expect(await store.blobSize('lib/a', blob('1'))).toBeUndefined();
      expect(await store.blobInUse(blob('1'))).toBe(false);
      // Its only content is gone, so the repository is too (listTags: NAME_UNKNOWN).
      expect(await store.repositoryExists('lib/a')).toBe(false);
      expect(await store.listTags('lib/a')).toBeUndefined();
    });

    it('counts a blob referenced only by a manifest as in use', async () => {
      await store.putManifest(manifestRecord('r', 'm', { blobs: [blob('config'), blob('layer')] }));
      expect(await store.blobInUse(blob('layer'))).toBe(true);
      expect(await store.blobSize('r', blob('layer'))).toBeUndefined();
    });

    it('stores manifests byte-exact with their metadata, idempotently', async () => {
      const child = manifestRecord('r', 'child');
      const record = manifestRecord('r', 'index', {
        mediaType: INDEX,
        artifactType: 'application/vnd.example',
        subject: digestOf('subject'),
        annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', 'a.b': 'ü' },
        blobs: [blob('config'), blob('layer 2'), blob('layer 1')],
        manifests: [child.digest],
      });
      await store.putManifest(record);
      const got = await store.getManifest('r', record.digest);
      expect(got).toEqual(record);
      expect(Buffer.compare(got?.bytes ?? Buffer.alloc(0), record.bytes)).toBe(0);
      expect(digestOf(got?.bytes ?? '')).toBe(record.digest);
      expect(await store.getManifest('other', record.digest)).toBeUndefined();
      expect(await store.getManifest('r', child.digest)).toBeUndefined();

      await store.putManifest({ ...record, createdAt: 5 }, 'again');
      expect(await store.getManifest('r', record.digest)).toEqual(record);
      expect(await store.resolveTag('r', 'again')).toBe(record.digest);
      expect(await store.repositoryExists('r')).toBe(true);
    });

    it('moves a tag, and reads see every committed move', async () => {
      const a = manifestRecord('r', 'a');
      const b = manifestRecord('r', 'b');
      await store.putManifest(a, 'latest');
      expect(await store.resolveTag('r', 'latest')).toBe(a.digest);
      await store.putManifest(b, 'latest');
      expect(await store.resolveTag('r', 'latest')).toBe(b.digest);
      await store.putManifest(a, 'latest');
      expect(await store.resolveTag('r', 'latest')).toBe(a.digest);
      expect(await store.getManifest('r', b.digest)).toBeDefined();
      expect(await store.listTags('r')).toEqual(['latest']);
      expect(await store.resolveTag('r', 'missing')).toBeUndefined();
      expect(await store.resolveTag('other', 'latest')).toBeUndefined();
    });

    it('moves a tag atomically under concurrent pushes', async () => {
      const records = Array.from({ length: 20 }, (_, i) => manifestRecord('r', `concurrent ${i}`));
      await Promise.all(records.map((r) => store.putManifest(r, 'latest')));
      const final = await store.resolveTag('r', 'latest');
      expect(records.map((r) => r.digest)).toContain(final);
      for (const r of records) expect((await store.getManifest('r', r.digest))?.bytes).toEqual(r.bytes);
      expect(await store.listTags('r')).toEqual(['latest']);
    });

    it('deletes a manifest with every tag pointing to it', async () => {
      const a = manifestRecord('r', 'a');
      const b = manifestRecord('r', 'b');
      await store.putManifest(a, 'v1');
      await store.putManifest(a, 'v2');
      await store.putManifest(b, 'v3');
      expect(await store.deleteManifest('r', a.digest)).toBe(true);
      expect(await store.deleteManifest('r', a.digest)).toBe(false);
      expect(await store.getManifest('r', a.digest)).toBeUndefined();
      expect(await store.resolveTag('r', 'v1')).toBeUndefined();
      expect(await store.listTags('r')).toEqual(['v3']);
      expect(await store.deleteManifest('r', b.digest)).toBe(true);
      expect(await store.repositoryExists('r')).toBe(false);
    });

    it('deletes a tag and keeps its manifest', async () => {
      const a = manifestRecord('r', 'a');
      await store.putManifest(a, 'v1');
      expect(await store.deleteTag('r', 'v1')).toBe(true);
      expect(await store.deleteTag('r', 'v1')).toBe(false);
      expect(await store.resolveTag('r', 'v1')).toBeUndefined();
      expect(await store.getManifest('r', a.digest)).toBeDefined();
      expect(await store.listTags('r')).toEqual([]);
      expect(await store.repositoryExists('r')).toBe(true);
    });

    it('lists tags in lexical (byte) order with n/last pagination', async () => {
      const tags = ['b', 'a', 'C', 'a-1', 'a_1', 'a.1', '10', '9', 'Z', 'latest'];
      const a = manifestRecord('r', 'a');
      for (const t of tags) await store.putManifest(a, t);
      const sorted = [...tags].sort(); // UTF-16 order equals byte order for the ASCII tag grammar
      expect(sorted.slice(0, 4)).toEqual(['10', '9', 'C', 'Z']);
      expect(await store.listTags('r')).toEqual(sorted);
      expect(await store.listTags('r', { n: 3 })).toEqual(sorted.slice(0, 3));
      expect(await store.listTags('r', { n: 3, last: sorted[2] })).toEqual(sorted.slice(3, 6));
      expect(await store.listTags('r', { last: sorted[8] })).toEqual(sorted.slice(9));
      expect(await store.listTags('r', { last: 'a0' })).toEqual(sorted.filter((t) => t > 'a0'));
      expect(await store.listTags('r', { last: 'zzz' })).toEqual([]);
      expect(await store.listTags('r', { n: 0 })).toEqual([]);
      expect(await store.listTags('unknown', { n: 0 })).toBeUndefined();
      const paged: string[] = [];
      for (let last: string | undefined; ; ) {
        const page = (await store.listTags('r', { n: 4, last })) ?? [];
        paged.push(...page);
        if (page.length < 4) break;
        last = page.at(-1);
      }
      expect(paged).toEqual(sorted);
    });

    it('lists a repository holding only blobs with no tags, and unknown ones as undefined', async () => {
      await store.linkBlob('blobs/only', blob('1'), 1);
      expect(await store.listTags('blobs/only')).toEqual([]);
      expect(await store.listTags('nope')).toBeUndefined();
    });

    it('lists repositories in lexical order with pagination', async () => {
      const names = ['zeta', 'alpha/b', 'alpha', 'alpha-b', 'Alpha', 'm/n/o'];
      for (const n of names) await store.linkBlob(n, blob(n), 1);
      const sorted = [...names].sort();
      expect(await store.listRepositories()).toEqual(sorted);
      expect(await store.listRepositories({ n: 2 })).toEqual(sorted.slice(0, 2));
      expect(await store.listRepositories({ n: 2, last: sorted[1] })).toEqual(sorted.slice(2, 4));
      expect(await store.listRepositories({ n: 0 })).toEqual([]);
      expect(await store.listRepositories({ last: 'zeta' })).toEqual([]);
    });

    it('reports repository usage: distinct blobs once, plus manifest bytes, per repository', async () => {
      expect(await store.repositoryUsage('u/a')).toBe(0);
      await store.linkBlob('u/a', blob('big'), 1000);
      await store.linkBlob('u/a', blob('big'), 1000);
      await store.linkBlob('u/a', blob('small'), 10);
      await store.linkBlob('u/b', blob('big'), 1000);
      const m1 = manifestRecord('u/a', 'one', { blobs: [blob('big'), blob('small')] });
      const m2 = manifestRecord('u/a', 'two', { blobs: [blob('big')] });
      await store.putManifest(m1, 'v1');
      await store.putManifest(m2, 'v2');
      await store.putManifest(m2, 'v3');
      expect(await store.repositoryUsage('u/a')).toBe(1010 + m1.bytes.length + m2.bytes.length);
      expect(await store.repositoryUsage('u/b')).toBe(1000);
      await store.unlinkBlob('u/a', blob('small'));
      await store.deleteManifest('u/a', m1.digest);
      expect(await store.repositoryUsage('u/a')).toBe(1000 + m2.bytes.length);
    });

    it('lists referrers of a subject in its repository, filtered by artifactType', async () => {
      const subject = manifestRecord('r', 'subject');
      await store.putManifest(subject, 'v1');
      const sig = manifestRecord('r', 'sig', { subject: subject.digest, artifactType: 'application/vnd.example.sig' });
      const sbom = manifestRecord('r', 'sbom', {
        subject: subject.digest,
        artifactType: 'application/vnd.example.sbom',
        annotations: { 'org.example.kind': 'spdx' },
      });
      const elsewhere = manifestRecord('other', 'sig2', { subject: subject.digest, artifactType: 'application/vnd.example.sig' });
      for (const m of [sig, sbom, elsewhere]) await store.putManifest(m);
      const descriptor = (m: ManifestRecord) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.bytes.length,
        artifactType: m.artifactType,
        ...(m.annotations ? { annotations: m.annotations } : {}),
      });
      const all = await store.listReferrers('r', subject.digest);
      expect(all).toHaveLength(2);
      expect(all).toEqual(expect.arrayContaining([descriptor(sig), descriptor(sbom)]));
      expect(await store.listReferrers('r', subject.digest, 'application/vnd.example.sbom')).toEqual([descriptor(sbom)]);
      expect(await store.listReferrers('r', subject.digest, 'application/none')).toEqual([]);
      expect(await store.listReferrers('r', digestOf('nothing'))).toEqual([]);
      expect(await store.deleteManifest('r', sig.digest)).toBe(true);
      expect(await store.listReferrers('r', subject.digest)).toEqual([descriptor(sbom)]);
    });

    it('creates, reads, updates, lists stale and deletes upload sessions', async () => {
      const upload = { id: 'u-1', repository: 'r', offset: 0, createdAt: 1000, updatedAt: 1000 };
      await store.createUpload(upload);
      await store.createUpload({ ...upload, id: 'u-2', updatedAt: 5000 });
      expect(await store.getUpload('r', 'u-1')).toEqual(upload);
      expect(await store.getUpload('other', 'u-1')).toBeUndefined();
      await store.updateUpload('r', 'u-1', 512, 2000);
      expect(await store.getUpload('r', 'u-1')).toEqual({ ...upload, offset: 512, updatedAt: 2000 });
      expect((await store.listStaleUploads(3000)).map((u) => u.id)).toEqual(['u-1']);
      expect((await store.listStaleUploads(6000)).map((u) => u.id)).toEqual(['u-1', 'u-2']);
      expect(await store.listStaleUploads(1000)).toEqual([]);
      // An upload session does not make its repository exist.
      expect(await store.repositoryExists('r')).toBe(false);
      expect(await store.deleteUpload('r', 'u-1')).toBe(true);
      expect(await store.deleteUpload('r', 'u-1')).toBe(false);
      expect(await store.getUpload('r', 'u-1')).toBeUndefined();
    });

    it('rejects updating a missing upload session with BLOB_UPLOAD_UNKNOWN', async () => {
      const err: unknown = await store.updateUpload('r', 'gone', 1, 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isKilnError(err, 'BLOB_UPLOAD_UNKNOWN')).toBe(true);
      await store.createUpload({ id: 'x', repository: 'r', offset: 0, createdAt: 1, updatedAt: 1 });
      await expect(store.updateUpload('other', 'x', 1, 2)).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    });

    it('runs 50 mixed operations in parallel without errors (no SQLITE_BUSY)', async () => {
      const base = manifestRecord('p', 'base');
      await store.putManifest(base, 'base');
      const ops: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        const repo = `p${Math.floor(i / 6) % 3}`;
        switch (i % 6) {
          case 0: ops.push(store.linkBlob(repo, blob(`par ${i}`), i)); break;
          case 1: ops.push(store.putManifest(manifestRecord(repo, `par ${i}`, { blobs: [blob(`par ${i}`)] }), `t${i % 4}`)); break;
          case 2: ops.push(store.resolveTag('p', 'base').then((d) => expect(d).toBe(base.digest))); break;
          case 3: ops.push(store.createUpload({ id: `par-${i}`, repository: repo, offset: 0, createdAt: i, updatedAt: i }).then(() => store.updateUpload(repo, `par-${i}`, i, i + 1))); break;
          case 4: ops.push(store.listTags(repo, { n: 2 })); break;
          default: ops.push(store.getManifest('p', base.digest).then((m) => expect(m?.bytes).toEqual(base.bytes)));
        }
      }
      const results = await Promise.allSettled(ops);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      for (let i = 1; i < 50; i += 6) {
        const repo = `p${Math.floor(i / 6) % 3}`;
        expect(await store.getManifest(repo, manifestRecord(repo, `par ${i}`).digest)).toBeDefined();
      }
      expect(await store.listTags('p0')).toEqual(expect.arrayContaining(['t1']));
      expect((await store.listStaleUploads(Number.MAX_SAFE_INTEGER)).length).toBe(8);
    });
  });
  // Garbage collection's part of the interface (gc-store.ts), in its own file.
  describeGcStoreContract(name, open);
}
