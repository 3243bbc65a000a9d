/**
 * Schema step for garbage collection (migration version 2): link ages, the GC lock and change counter,
 * and tombstones with the triggers that make a write racing the collector fail instead of dangling.
 */
export const GC_SCHEMA_SQL = `
  -- When the repository last gained the blob (upload completion or mount): an unreferenced link is kept
  -- for the grace period after it. Links made before this version count from the upgrade.
  ALTER TABLE blobs ADD COLUMN linked_at INTEGER NOT NULL DEFAULT 0;
  UPDATE blobs SET linked_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);

  -- One row: who runs garbage collection (kiln gc and kiln serve share a database, never a GC run), and a
  -- counter bumped by sweeps that removed tags or manifests, which servers watch to drop cached manifests.
  CREATE TABLE gc_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    heartbeat_at INTEGER
  );
  INSERT INTO gc_state (id) VALUES (1);

  -- What GC removed lately: (repository, digest) of a swept link or manifest; ('', digest) of deleted bytes.
  CREATE TABLE gc_removed (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    removed_at INTEGER NOT NULL,
    PRIMARY KEY (repository, digest)
  ) WITHOUT ROWID;

  -- A manifest PUT checks its references before its transaction; if GC swept one in between, storing the
  -- manifest would reference something gone. Refused unless the link or manifest is back.
  CREATE TRIGGER gc_refuse_swept_reference BEFORE INSERT ON manifest_blobs
  WHEN EXISTS (SELECT 1 FROM gc_removed WHERE repository = NEW.repository AND digest = NEW.digest)
    AND NOT EXISTS (SELECT 1 FROM blobs WHERE repository = NEW.repository AND digest = NEW.digest)
    AND NOT EXISTS (SELECT 1 FROM manifests WHERE repository = NEW.repository AND digest = NEW.digest)
  BEGIN
    SELECT RAISE(ABORT, 'kiln-gc: reference to a swept blob or manifest');
  END;

  -- A mount checks the blob before linking it; if GC deleted its bytes in between, the link would point at
  -- nothing. An upload completing the same bytes is allowed: its session (same size) is still recorded.
  CREATE TRIGGER gc_refuse_deleted_link BEFORE INSERT ON blobs
  WHEN EXISTS (SELECT 1 FROM gc_removed WHERE repository = '' AND digest = NEW.digest)
    AND NOT EXISTS (SELECT 1 FROM uploads WHERE repository = NEW.repository AND "offset" = NEW.size)
  BEGIN
    SELECT RAISE(ABORT, 'kiln-gc: link to deleted blob bytes');
  END;

  CREATE TRIGGER gc_forget_relinked AFTER INSERT ON blobs
  BEGIN
    DELETE FROM gc_removed WHERE digest = NEW.digest AND repository IN ('', NEW.repository);
  END;
`;

/** Marks the messages of the triggers above, so a store can name the refused write. */
export const GC_TRIGGER_MARK = 'kiln-gc:';
