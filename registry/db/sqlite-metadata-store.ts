import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Descriptor } from '../../oci/descriptor.js';
import type { Digest } from '../../oci/digest.js';
import { errorMessage, KilnError } from '../../oci/errors.js';
import type { BlobReferences, GcLockHolder, RepositorySnapshot, RepositorySweep } from './gc-store.js';
import { GC_TRIGGER_MARK } from './gc-schema.js';
import type { ManifestRecord, MetadataStore, Page, UploadRecord } from './metadata-store.js';
import { migrate } from './migrations.js';
import * as gc from './sqlite-gc.js';
import { SqliteDatabase, type SqlExecutor } from './sqlite.js';

// Statement texts are constants: SqliteDatabase caches one prepared statement per text.
const SQL = {
  ensureRepository: 'INSERT INTO repositories (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING',
  // Runs after deletes: a repository exists only while it holds a blob or a manifest (tags need a manifest).
  pruneRepository: `DELETE FROM repositories WHERE name = ?1
    AND NOT EXISTS (SELECT 1 FROM blobs WHERE repository = ?1)
    AND NOT EXISTS (SELECT 1 FROM manifests WHERE repository = ?1)`,
  repositoryExists: 'SELECT 1 AS found FROM repositories WHERE name = ?',
  listRepositories: 'SELECT name FROM repositories WHERE name > ? ORDER BY name COLLATE BINARY LIMIT ?',
  // blobs has one row per (repository, digest): a blob is counted once however many manifests use it.
  // length() of a BLOB reads the record header, not the manifest bytes.
  repositoryUsage: `SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs WHERE repository = ?1)
    + (SELECT COALESCE(SUM(length(bytes)), 0) FROM manifests WHERE repository = ?1) AS bytes`,

  // Linking again (re-upload, mount) renews the link's age: GC keeps unreferenced links for its grace period.
  linkBlob: `INSERT INTO blobs (repository, digest, size, linked_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (repository, digest) DO UPDATE SET linked_at = excluded.linked_at`,
  blobSize: 'SELECT size FROM blobs WHERE repository = ? AND digest = ?',
  unlinkBlob: 'DELETE FROM blobs WHERE repository = ? AND digest = ?',
  blobInUse: `SELECT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
    OR EXISTS (SELECT 1 FROM manifest_blobs WHERE digest = ?1) AS used`,

  insertManifest: `INSERT INTO manifests (repository, digest, media_type, bytes, artifact_type, subject, annotations, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO NOTHING`,
  // One statement per kind whatever the number of layers: json_each's key is the array position.
  insertRefs: `INSERT INTO manifest_blobs (repository, manifest, kind, position, digest)
    SELECT ?1, ?2, ?3, key, value FROM json_each(?4)`,
  // One round trip for the hot path (manifest GET): the reference lists come back as JSON arrays.
  getManifest: `SELECT media_type, bytes, artifact_type, subject, annotations, created_at,
      (SELECT json_group_array(r.digest ORDER BY r.position) FROM manifest_blobs r
        WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'blob') AS blobs,
      (SELECT json_group_array(r.digest ORDER BY r.position) FROM manifest_blobs r
        WHERE r.repository = m.repository AND r.manifest = m.digest AND r.kind = 'manifest') AS manifests
    FROM manifests m WHERE m.repository = ? AND m.digest = ?`,
  // Tags go with it through the foreign key's ON DELETE CASCADE, as do its manifest_blobs rows.
  deleteManifest: 'DELETE FROM manifests WHERE repository = ? AND digest = ?',
  listReferrers: `SELECT media_type, digest, length(bytes) AS size, artifact_type, annotations FROM manifests
    WHERE repository = ?1 AND subject = ?2 AND (?3 IS NULL OR artifact_type = ?3) ORDER BY digest`,

  upsertTag: `INSERT INTO tags (repository, tag, digest, updated_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at`,
  resolveTag: 'SELECT digest FROM tags WHERE repository = ? AND tag = ?',
  deleteTag: 'DELETE FROM tags WHERE repository = ? AND tag = ?',
  listTags: 'SELECT tag FROM tags WHERE repository = ? AND tag > ? ORDER BY tag COLLATE BINARY LIMIT ?',

  createUpload: 'INSERT INTO uploads (id, repository, offset, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
  getUpload: 'SELECT id, repository, offset, created_at, updated_at FROM uploads WHERE repository = ? AND id = ?',
  updateUpload: 'UPDATE uploads SET offset = ?, updated_at = ? WHERE repository = ? AND id = ?',
  deleteUpload: 'DELETE FROM uploads WHERE repository = ? AND id = ?',
  staleUploads: 'SELECT id, repository, offset, created_at, updated_at FROM uploads WHERE updated_at < ? ORDER BY updated_at, id',
} as const;

interface ManifestRow {
  media_type: string;
  bytes: Buffer;
  artifact_type: string | null;
  subject: string | null;
  annotations: string | null;
  created_at: number;
  blobs: string;
  manifests: string;
}

interface ReferrerRow {
  media_type: string;
  digest: string;
  size: number;
  artifact_type: string | null;
  annotations: string | null;
}

interface UploadRow {
  id: string;
  repository: string;
  offset: number;
  created_at: number;
  updated_at: number;
}

/** MetadataStore on one SQLite file (WAL): the default backend of `kiln serve`. */
export class SqliteMetadataStore implements MetadataStore {
  private constructor(private readonly db: SqliteDatabase) {}

  /** Opens or creates the database at `path` (and its directory), migrating it to the current schema. */
  static async open(path: string): Promise<SqliteMetadataStore> {
    await mkdir(dirname(path), { recursive: true });
    const db = await SqliteDatabase.open(path);
    try {
      await migrate(db);
    } catch (err) {
      await db.close().catch((closeErr: unknown) => {
        throw new KilnError('INTERNAL', `${errorMessage(err)}; closing the database also failed: ${errorMessage(closeErr)}`, { cause: err });
      });
      throw err;
    }
    return new SqliteMetadataStore(db);
  }

  async linkBlob(repository: string, digest: Digest, size: number): Promise<void> {
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      await tx.run(SQL.ensureRepository, [repository, now]);
      await tx.run(SQL.linkBlob, [repository, digest, size, now]);
    });
  }

  async blobSize(repository: string, digest: Digest): Promise<number | undefined> {
    return (await this.db.get<{ size: number }>(SQL.blobSize, [repository, digest]))?.size;
  }

  unlinkBlob(repository: string, digest: Digest): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run(SQL.unlinkBlob, [repository, digest]);
      if (changes > 0) await tx.run(SQL.pruneRepository, [repository]);
      return changes > 0;
    });
  }

  async blobInUse(digest: Digest): Promise<boolean> {
    return (await this.db.get<{ used: number }>(SQL.blobInUse, [digest]))?.used === 1;
  }

  async putManifest(record: ManifestRecord, tag?: string): Promise<void> {
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      await tx.run(SQL.ensureRepository, [record.repository, now]);
      const annotations = record.annotations === undefined ? null : JSON.stringify(record.annotations);
      const { changes } = await tx.run(SQL.insertManifest, [
        record.repository,
        record.digest,
        record.mediaType,
        record.bytes,
        record.artifactType ?? null,
        record.subject ?? null,
        annotations,
        record.createdAt,
      ]);
      // Same digest, same bytes, same references: an existing row is already complete.
      if (changes > 0) {
        await insertRefs(tx, record, 'blob', record.blobs);
        await insertRefs(tx, record, 'manifest', record.manifests);
      }
      if (tag !== undefined) await tx.run(SQL.upsertTag, [record.repository, tag, record.digest, now]);
    }).catch((err: unknown) => {
      // The gc-schema.ts trigger: a reference checked before this transaction was swept by GC meanwhile.
      if (!errorMessage(err).includes(GC_TRIGGER_MARK)) throw err;
      throw new KilnError('MANIFEST_BLOB_UNKNOWN', `${record.repository}: a blob or manifest this manifest references was just garbage-collected; push it again`, { cause: err });
    });
  }

  async getManifest(repository: string, digest: Digest): Promise<ManifestRecord | undefined> {
    const row = await this.db.get<ManifestRow>(SQL.getManifest, [repository, digest]);
    if (!row) return undefined;
    return {
      repository,
      digest,
      mediaType: row.media_type,
      bytes: row.bytes,
      artifactType: row.artifact_type ?? undefined,
      subject: (row.subject ?? undefined) as Digest | undefined,
      annotations: parseAnnotations(row.annotations),
      blobs: parseJson(row.blobs) as Digest[],
      manifests: parseJson(row.manifests) as Digest[],
      createdAt: row.created_at,
    };
  }

  async resolveTag(repository: string, tag: string): Promise<Digest | undefined> {
    return (await this.db.get<{ digest: Digest }>(SQL.resolveTag, [repository, tag]))?.digest;
  }

  deleteManifest(repository: string, digest: Digest): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const { changes } = await tx.run(SQL.deleteManifest, [repository, digest]);
      if (changes > 0) await tx.run(SQL.pruneRepository, [repository]);
      return changes > 0;
    });
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    return (await this.db.run(SQL.deleteTag, [repository, tag])).changes > 0;
  }

  async listTags(repository: string, page: Page = {}): Promise<string[] | undefined> {
    const rows = await this.db.all<{ tag: string }>(SQL.listTags, [repository, page.last ?? '', limit(page.n)]);
    if (rows.length === 0 && !(await this.repositoryExists(repository))) return undefined;
    return rows.map((r) => r.tag);
  }

  async listRepositories(page: Page = {}): Promise<string[]> {
    const rows = await this.db.all<{ name: string }>(SQL.listRepositories, [page.last ?? '', limit(page.n)]);
    return rows.map((r) => r.name);
  }

  async repositoryExists(repository: string): Promise<boolean> {
    return (await this.db.get<{ found: number }>(SQL.repositoryExists, [repository])) !== undefined;
  }

  async repositoryUsage(repository: string): Promise<number> {
    return (await this.db.get<{ bytes: number }>(SQL.repositoryUsage, [repository]))?.bytes ?? 0;
  }

  async listReferrers(repository: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const rows = await this.db.all<ReferrerRow>(SQL.listReferrers, [repository, subject, artifactType ?? null]);
    return rows.map((r) => {
      const descriptor: Descriptor = { mediaType: r.media_type, digest: r.digest as Digest, size: r.size };
      if (r.artifact_type !== null) descriptor.artifactType = r.artifact_type;
      const annotations = parseAnnotations(r.annotations);
      if (annotations !== undefined) descriptor.annotations = annotations;
      return descriptor;
    });
  }

  async createUpload(record: UploadRecord): Promise<void> {
    await this.db.run(SQL.createUpload, [record.id, record.repository, record.offset, record.createdAt, record.updatedAt]);
  }

  async getUpload(repository: string, id: string): Promise<UploadRecord | undefined> {
    const row = await this.db.get<UploadRow>(SQL.getUpload, [repository, id]);
    return row && toUpload(row);
  }

  async updateUpload(repository: string, id: string, offset: number, updatedAt: number): Promise<void> {
    const { changes } = await this.db.run(SQL.updateUpload, [offset, updatedAt, repository, id]);
    if (changes === 0) throw new KilnError('BLOB_UPLOAD_UNKNOWN', `upload ${id} to ${repository} is unknown or finished`);
  }

  async deleteUpload(repository: string, id: string): Promise<boolean> {
    return (await this.db.run(SQL.deleteUpload, [repository, id])).changes > 0;
  }

  async listStaleUploads(updatedBefore: number): Promise<UploadRecord[]> {
    return (await this.db.all<UploadRow>(SQL.staleUploads, [updatedBefore])).map(toUpload);
  }

  lockGc(owner: string, now: number, staleBefore: number): Promise<GcLockHolder | undefined> {
    return gc.lockGc(this.db, owner, now, staleBefore);
  }

  unlockGc(owner: string, tombstonesBefore: number): Promise<void> {
    return gc.unlockGc(this.db, owner, tombstonesBefore);
  }

  gcGeneration(): Promise<number> {
    return gc.gcGeneration(this.db);
  }

  sweepRepository(repository: string, decide: (snapshot: RepositorySnapshot) => RepositorySweep, options: { dryRun?: boolean } = {}): Promise<RepositorySweep> {
    return gc.sweepRepository(this.db, repository, decide, options.dryRun ?? false);
  }

  blobReferences(digest: Digest): Promise<BlobReferences> {
    return gc.blobReferences(this.db, digest);
  }

  deleteBlobIfUnreferenced(digest: Digest, size: number, remove: () => Promise<boolean>): Promise<boolean> {
    return gc.deleteBlobIfUnreferenced(this.db, digest, size, remove);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

async function insertRefs(tx: SqlExecutor, record: ManifestRecord, kind: 'blob' | 'manifest', digests: readonly Digest[]): Promise<void> {
  if (digests.length > 0) await tx.run(SQL.insertRefs, [record.repository, record.digest, kind, JSON.stringify(digests)]);
}

/** SQLite LIMIT for a page size: -1 is "no limit". */
function limit(n: number | undefined): number {
  if (n === undefined) return -1;
  if (!Number.isSafeInteger(n) || n < 0) throw new KilnError('VALIDATION', `page size must be a non-negative integer, got ${n}`);
  return n;
}

function parseJson(text: string): unknown {
  return JSON.parse(text);
}

function parseAnnotations(text: string | null): Record<string, string> | undefined {
  return text === null ? undefined : (parseJson(text) as Record<string, string>);
}

function toUpload(row: UploadRow): UploadRecord {
  return { id: row.id, repository: row.repository, offset: row.offset, createdAt: row.created_at, updatedAt: row.updated_at };
}
