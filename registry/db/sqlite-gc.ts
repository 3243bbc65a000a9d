import type { Digest } from '../../oci/digest.js';
import type { BlobReferences, GcLockHolder, ManifestNode, RepositorySnapshot, RepositorySweep } from './gc-store.js';
import type { SqlExecutor, SqliteDatabase } from './sqlite.js';

// Statement texts are constants: SqliteDatabase caches one prepared statement per text.
const SQL = {
  lock: `UPDATE gc_state SET owner = ?1, heartbeat_at = ?2
    WHERE id = 1 AND (owner IS NULL OR owner = ?1 OR heartbeat_at < ?3)`,
  holder: 'SELECT owner, heartbeat_at FROM gc_state WHERE id = 1',
  unlock: 'UPDATE gc_state SET owner = NULL, heartbeat_at = NULL WHERE id = 1 AND owner = ?',
  pruneTombstones: 'DELETE FROM gc_removed WHERE removed_at < ?',
  generation: 'SELECT generation FROM gc_state WHERE id = 1',
  bumpGeneration: 'UPDATE gc_state SET generation = generation + 1 WHERE id = 1',

  tags: 'SELECT tag, digest, updated_at FROM tags WHERE repository = ?',
  manifests: 'SELECT digest, created_at, subject FROM manifests WHERE repository = ?',
  refs: 'SELECT manifest, kind, digest FROM manifest_blobs WHERE repository = ? ORDER BY manifest, kind, position',
  links: 'SELECT digest, size, linked_at FROM blobs WHERE repository = ?',

  deleteTag: 'DELETE FROM tags WHERE repository = ? AND tag = ?',
  // Its tags and manifest_blobs rows go with it (ON DELETE CASCADE).
  deleteManifest: 'DELETE FROM manifests WHERE repository = ? AND digest = ?',
  deleteLink: 'DELETE FROM blobs WHERE repository = ? AND digest = ?',
  tombstone: `INSERT INTO gc_removed (repository, digest, removed_at) VALUES (?, ?, ?)
    ON CONFLICT (repository, digest) DO UPDATE SET removed_at = excluded.removed_at`,
  pruneRepository: `DELETE FROM repositories WHERE name = ?1
    AND NOT EXISTS (SELECT 1 FROM blobs WHERE repository = ?1)
    AND NOT EXISTS (SELECT 1 FROM manifests WHERE repository = ?1)`,

  blobLinks: 'SELECT repository FROM blobs WHERE digest = ? ORDER BY repository',
  blobManifests: 'SELECT DISTINCT repository, manifest FROM manifest_blobs WHERE digest = ? ORDER BY repository, manifest',
  // An upload session of exactly this size may be between committing these bytes and linking them.
  blobUnreferenced: `SELECT NOT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)
    AND NOT EXISTS (SELECT 1 FROM manifest_blobs WHERE digest = ?1)
    AND NOT EXISTS (SELECT 1 FROM uploads WHERE "offset" = ?2) AS unused`,
} as const;

/** Takes or renews the GC lock; undefined on success, else the current holder. */
export async function lockGc(db: SqliteDatabase, owner: string, now: number, staleBefore: number): Promise<GcLockHolder | undefined> {
  return db.transaction(async (tx) => {
    if ((await tx.run(SQL.lock, [owner, now, staleBefore])).changes > 0) return undefined;
    const row = await tx.get<{ owner: string | null; heartbeat_at: number | null }>(SQL.holder);
    return { owner: row?.owner ?? 'unknown', heartbeatAt: row?.heartbeat_at ?? 0 };
  });
}

/** Releases the lock held by `owner` and prunes old tombstones. */
export async function unlockGc(db: SqliteDatabase, owner: string, tombstonesBefore: number): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.run(SQL.pruneTombstones, [tombstonesBefore]);
    await tx.run(SQL.unlock, [owner]);
  });
}

/** The sweep change counter. */
export async function gcGeneration(db: SqliteDatabase): Promise<number> {
  return (await db.get<{ generation: number }>(SQL.generation))?.generation ?? 0;
}

/** Reads, decides and (unless `dryRun`) removes in one write transaction. */
export async function sweepRepository(
  db: SqliteDatabase,
  repository: string,
  decide: (snapshot: RepositorySnapshot) => RepositorySweep,
  dryRun: boolean,
): Promise<RepositorySweep> {
  // A dry run needs no write lock: committed data is enough to say what would go.
  if (dryRun) return decide(await readSnapshot(db, repository));
  return db.transaction(async (tx) => {
    const sweep = decide(await readSnapshot(tx, repository));
    const now = Date.now();
    for (const tag of sweep.tags) await tx.run(SQL.deleteTag, [repository, tag]);
    for (const digest of sweep.manifests) {
      await tx.run(SQL.deleteManifest, [repository, digest]);
      await tx.run(SQL.tombstone, [repository, digest, now]);
    }
    for (const digest of sweep.links) {
      await tx.run(SQL.deleteLink, [repository, digest]);
      await tx.run(SQL.tombstone, [repository, digest, now]);
    }
    if (sweep.manifests.length + sweep.links.length > 0) await tx.run(SQL.pruneRepository, [repository]);
    if (sweep.tags.length + sweep.manifests.length > 0) await tx.run(SQL.bumpGeneration);
    return sweep;
  });
}

/** Repositories and manifests referring to `digest`. */
export async function blobReferences(db: SqliteDatabase, digest: Digest): Promise<BlobReferences> {
  const links = await db.all<{ repository: string }>(SQL.blobLinks, [digest]);
  const manifests = await db.all<{ repository: string; manifest: Digest }>(SQL.blobManifests, [digest]);
  return { links: links.map((r) => r.repository), manifests: manifests.map((r) => ({ repository: r.repository, digest: r.manifest })) };
}

/**
 * Removes the blob's bytes while holding the write lock, after re-checking that nothing refers to them.
 * Every write that could make a new reference (a link, a manifest) takes the same lock, so it either
 * committed before the check (and is seen) or runs after the deletion (and the triggers refuse it).
 */
export async function deleteBlobIfUnreferenced(db: SqliteDatabase, digest: Digest, size: number, remove: () => Promise<boolean>): Promise<boolean> {
  return db.transaction(async (tx) => {
    if ((await tx.get<{ unused: number }>(SQL.blobUnreferenced, [digest, size]))?.unused !== 1) return false;
    await tx.run(SQL.tombstone, ['', digest, Date.now()]);
    return remove();
  });
}

async function readSnapshot(exec: SqlExecutor, repository: string): Promise<RepositorySnapshot> {
  const tags = await exec.all<{ tag: string; digest: Digest; updated_at: number }>(SQL.tags, [repository]);
  const manifests = await exec.all<{ digest: Digest; created_at: number; subject: Digest | null }>(SQL.manifests, [repository]);
  const refs = await exec.all<{ manifest: Digest; kind: 'blob' | 'manifest'; digest: Digest }>(SQL.refs, [repository]);
  const links = await exec.all<{ digest: Digest; size: number; linked_at: number }>(SQL.links, [repository]);
  const nodes = new Map<Digest, ManifestNode>();
  for (const m of manifests) nodes.set(m.digest, { digest: m.digest, createdAt: m.created_at, subject: m.subject ?? undefined, blobs: [], manifests: [] });
  for (const r of refs) {
    const node = nodes.get(r.manifest);
    if (node) (r.kind === 'blob' ? node.blobs : node.manifests).push(r.digest);
  }
  return {
    repository,
    tags: tags.map((t) => ({ tag: t.tag, digest: t.digest, updatedAt: t.updated_at })),
    manifests: [...nodes.values()],
    links: links.map((l) => ({ digest: l.digest, size: l.size, linkedAt: l.linked_at })),
  };
}
