import { KilnError } from '../../oci/errors.js';
import { GC_SCHEMA_SQL } from './gc-schema.js';
import type { SqliteDatabase } from './sqlite.js';

/** One schema step: applied once, in its own transaction, together with `PRAGMA user_version = version`. */
export interface Migration {
  version: number;
  sql: string;
}

// Never edit a released step: append one. Names, tags and digests keep SQLite's default BINARY collation, so
// primary keys give the distribution-spec's lexical order for pagination.
/** The schema, oldest step first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
      -- A repository exists while it holds a blob or a manifest; the store deletes the row when it empties.
      CREATE TABLE repositories (
        name TEXT NOT NULL PRIMARY KEY,
        created_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE blobs (
        repository TEXT NOT NULL REFERENCES repositories (name),
        digest TEXT NOT NULL,
        size INTEGER NOT NULL CHECK (size >= 0),
        PRIMARY KEY (repository, digest)
      ) WITHOUT ROWID;
      -- GC asks "is this digest used anywhere?" across repositories.
      CREATE INDEX blobs_by_digest ON blobs (digest);

      -- Rowid table: rows carry the manifest bytes, too large for a WITHOUT ROWID b-tree.
      CREATE TABLE manifests (
        repository TEXT NOT NULL REFERENCES repositories (name),
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        bytes BLOB NOT NULL,
        artifact_type TEXT,
        subject TEXT,
        annotations TEXT CHECK (annotations IS NULL OR json_valid(annotations)),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (repository, digest)
      );
      -- Referrers API: manifests of a repository by subject, already in digest order.
      CREATE INDEX manifests_by_subject ON manifests (repository, subject, digest) WHERE subject IS NOT NULL;

      -- What a manifest keeps alive for GC: its blobs (config, layers) and, for an index, its child manifests.
      -- position keeps the pushed order (and repeated layers) so getManifest returns the record as stored.
      CREATE TABLE manifest_blobs (
        repository TEXT NOT NULL,
        manifest TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
        position INTEGER NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (repository, manifest, kind, position),
        FOREIGN KEY (repository, manifest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
      ) WITHOUT ROWID;
      CREATE INDEX manifest_blobs_by_digest ON manifest_blobs (digest);

      -- The primary key orders tags lexically per repository: it is the tag-listing index.
      -- A tag cannot outlive its manifest: the foreign key deletes it with the manifest.
      -- A rowid table: as WITHOUT ROWID, the cascade's DELETE scanned the repository's tags by primary key
      -- instead of using tags_by_manifest.
      CREATE TABLE tags (
        repository TEXT NOT NULL,
        tag TEXT NOT NULL,
        digest TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repository, tag),
        FOREIGN KEY (repository, digest) REFERENCES manifests (repository, digest) ON DELETE CASCADE
      );
      -- Lets the cascade above find a manifest's tags without scanning the repository's tags.
      CREATE INDEX tags_by_manifest ON tags (repository, digest);

      -- No foreign key to repositories: an upload in progress does not make a repository exist.
      CREATE TABLE uploads (
        id TEXT NOT NULL PRIMARY KEY,
        repository TEXT NOT NULL,
        offset INTEGER NOT NULL CHECK (offset >= 0),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX uploads_by_updated_at ON uploads (updated_at);
    `,
  },
  // Garbage collection: link ages, GC lock and generation, tombstones and their triggers (gc-schema.ts).
  { version: 2, sql: GC_SCHEMA_SQL },
];

/** The schema version this code reads and writes. */
export const SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

/** Brings the database to SCHEMA_VERSION; refuses a database written by a newer Kiln. */
export async function migrate(db: SqliteDatabase, migrations: readonly Migration[] = MIGRATIONS): Promise<{ from: number; to: number }> {
  const latest = migrations.at(-1)?.version ?? 0;
  const from = await userVersion(db);
  if (from > latest) {
    throw new KilnError('INTERNAL', `metadata database ${db.path} has schema version ${from}, newer than this kiln supports (${latest})`, {
      hint: 'run the kiln version that wrote it (or newer), or point --data at another directory',
    });
  }
  let previous = 0;
  for (const step of migrations) {
    if (!Number.isSafeInteger(step.version) || step.version <= previous) {
      throw new KilnError('INTERNAL', `migration versions must be ascending integers from 1, got ${step.version} after ${previous}`);
    }
    previous = step.version;
    if (step.version <= from) continue;
    await db.transaction(async (tx) => {
      // Re-read under the write lock: another process opening the same file may have just applied this step.
      const row = await tx.get<{ user_version: number }>('PRAGMA user_version');
      if ((row?.user_version ?? 0) >= step.version) return;
      await tx.exec(step.sql);
      // PRAGMA takes no parameters; the version is a checked integer.
      await tx.exec(`PRAGMA user_version = ${step.version}`);
    });
  }
  return { from, to: latest };
}

/** `PRAGMA user_version` of the database: 0 for a new file. */
export async function userVersion(db: SqliteDatabase): Promise<number> {
  return (await db.get<{ user_version: number }>('PRAGMA user_version'))?.user_version ?? 0;
}
