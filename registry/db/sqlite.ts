import { AsyncLocalStorage } from 'node:async_hooks';
import sqlite3 from 'sqlite3';
import { errorMessage, KilnError } from '../../oci/errors.js';

/** A value SQLite binds: TEXT, INTEGER/REAL, BLOB (Buffer) or NULL. */
export type SqlValue = string | number | Buffer | null;

/** Outcome of a write statement. */
export interface RunResult {
  changes: number;
  lastID: number;
}

/** Runs SQL on one connection; statement text should be constant (prepared statements are cached by text). */
export interface SqlExecutor {
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
  /** First row; the statement still runs to completion so no read transaction is left open. */
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs one or more statements without parameters (DDL, PRAGMA). */
  exec(sql: string): Promise<void>;
}

/** Wraps a driver error so it carries Kiln's code, the SQLite code and the statement that failed. */
function sqlError(err: Error, sql: string): KilnError {
  const code = (err as NodeJS.ErrnoException).code ?? 'SQLITE_ERROR';
  const hint = code === 'SQLITE_BUSY' ? 'another process holds the metadata database write lock for over 5 s' : undefined;
  return new KilnError('INTERNAL', `${err.message} (in "${sql.replace(/\s+/g, ' ').slice(0, 80)}")`, { cause: err, hint, detail: { sqlite: code } });
}

/** A prepared statement and how many calls are using it. */
interface Slot {
  stmt: Promise<sqlite3.Statement>;
  busy: number;
}

// node-sqlite3 runs one call at a time per Statement object, so concurrent reads of one SQL text need several
// statements; beyond libuv's default thread pool (4 threads) more would only queue there instead.
const STATEMENTS_PER_SQL = 4;

/** One node-sqlite3 connection with a cache of prepared statements (a few per SQL text). */
class Connection implements SqlExecutor {
  private readonly statements = new Map<string, Slot[]>();

  private constructor(private readonly db: sqlite3.Database) {}

  static open(path: string, mode: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const db = new sqlite3.Database(path, mode, (err) => (err ? reject(sqlError(err, `open ${path}`)) : resolve(new Connection(db))));
    });
  }

  /** Runs `op` on the least busy prepared statement for `sql`, preparing another while all are busy. */
  private async use<T>(sql: string, op: (stmt: sqlite3.Statement) => Promise<T>): Promise<T> {
    let slots = this.statements.get(sql);
    if (!slots) this.statements.set(sql, (slots = []));
    let slot: Slot | undefined;
    for (const s of slots) if (!slot || s.busy < slot.busy) slot = s;
    if (!slot || (slot.busy > 0 && slots.length < STATEMENTS_PER_SQL)) {
      const created: Slot = { stmt: this.prepare(sql), busy: 0 };
      const list = slots;
      list.push(created);
      // A statement that failed to prepare is dropped: the next call prepares (and reports) afresh.
      created.stmt.catch(() => list.splice(list.indexOf(created), 1));
      slot = created;
    }
    slot.busy++;
    try {
      return await op(await slot.stmt);
    } finally {
      slot.busy--;
    }
  }

  private prepare(sql: string): Promise<sqlite3.Statement> {
    return new Promise((resolve, reject) => {
      const prepared = this.db.prepare(sql, (err: Error | null) => (err ? reject(sqlError(err, sql)) : resolve(prepared)));
    });
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
    return this.use(
      sql,
      (stmt) =>
        new Promise((resolve, reject) => {
          stmt.run(params, function (this: sqlite3.RunResult, err: Error | null) {
            if (err) reject(sqlError(err, sql));
            else resolve({ changes: this.changes, lastID: this.lastID });
          });
        }),
    );
  }

  all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.use(
      sql,
      (stmt) =>
        new Promise((resolve, reject) => {
          stmt.all<T>(params, (err: Error | null, rows: T[]) => (err ? reject(sqlError(err, sql)) : resolve(rows)));
        }),
    );
  }

  // node-sqlite3's Statement#get stops at the first row without resetting, which keeps the connection's
  // read snapshot open (later reads would see stale data, checkpoints stall): `all` steps to the end.
  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.db.exec(sql, (err: Error | null) => (err ? reject(sqlError(err, sql)) : resolve()));
    });
  }

  async close(): Promise<void> {
    const statements = await Promise.allSettled([...this.statements.values()].flat().map((s) => s.stmt));
    this.statements.clear();
    for (const s of statements) {
      if (s.status === 'fulfilled') await new Promise<void>((resolve) => s.value.finalize(() => resolve()));
    }
    await new Promise<void>((resolve, reject) => this.db.close((err) => (err ? reject(sqlError(err, 'close')) : resolve())));
  }
}

/** A transaction's lifetime: its handle stops working once it has ended. */
interface TxState {
  open: boolean;
}

// Two connections to one WAL file: the writer runs one transaction at a time through an in-process queue; the
// read-only reader sees only committed data, so reads neither wait for nor observe an open write transaction.
/** A SQLite database file (WAL) with queued write transactions and a separate reader connection. */
export class SqliteDatabase implements SqlExecutor {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly current = new AsyncLocalStorage<TxState>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly writer: Connection,
    private readonly reader: Connection,
  ) {}

  /** Opens (creating) the database file at `path`; a file path is required, since both connections share it. */
  static async open(path: string): Promise<SqliteDatabase> {
    if (path === '' || path.startsWith(':memory:') || path.startsWith('file:')) {
      throw new KilnError('USAGE', `SQLite metadata needs a file path, got "${path}"`);
    }
    const writer = await Connection.open(path, sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE);
    try {
      const mode = await writer.get<{ journal_mode: string }>('PRAGMA journal_mode = WAL');
      if (mode?.journal_mode !== 'wal') {
        throw new KilnError('INTERNAL', `${path}: SQLite could not switch to WAL mode (got ${String(mode?.journal_mode)})`, {
          hint: 'keep the registry data directory on a local filesystem',
        });
      }
      // FULL: every COMMIT fsyncs the WAL. NORMAL would survive a process crash (a committed transaction is in
      // the WAL before COMMIT returns) but may lose the last commits on power loss; a registry acknowledges a push
      // with 201 and the blob store already fsyncs each blob, so metadata is made as durable as the bytes it names.
      // busy_timeout only matters for other processes (kiln gc, a second server): in-process writers are queued.
      await writer.exec('PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
      const reader = await Connection.open(path, sqlite3.OPEN_READONLY);
      try {
        await reader.exec('PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
      } catch (err) {
        await closeAfterFailure(reader, err);
        throw err;
      }
      return new SqliteDatabase(path, writer, reader);
    } catch (err) {
      await closeAfterFailure(writer, err);
      throw err;
    }
  }

  /** A single write statement, committed on its own, queued behind running transactions. */
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult> {
    return this.exclusive(() => this.writer.run(sql, params));
  }

  /** Reads committed data (never the uncommitted writes of a running transaction: use its handle for those). */
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.closed ? Promise.reject(this.closedError()) : this.reader.get<T>(sql, params);
  }

  /** Reads committed data, every row. */
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.closed ? Promise.reject(this.closedError()) : this.reader.all<T>(sql, params);
  }

  /** Runs parameterless statements on the writer, queued like `run`. */
  exec(sql: string): Promise<void> {
    return this.exclusive(() => this.writer.exec(sql));
  }

  // Queued because the writer is one connection: two interleaved async transactions would share one BEGIN.
  /** Runs `fn` inside BEGIN IMMEDIATE … COMMIT, or ROLLBACK when it throws; `fn` must use the handle it gets. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.exclusive(async (state) => {
      await this.writer.run('BEGIN IMMEDIATE');
      let result: T;
      try {
        try {
          result = await fn(handle(this.writer, state));
        } finally {
          state.open = false;
        }
        await this.writer.run('COMMIT');
      } catch (err) {
        await this.rollback(err);
        throw err;
      }
      return result;
    });
  }

  /** Waits for queued writes, then closes both connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.tail;
    await this.reader.close();
    await this.writer.close();
  }

  private exclusive<T>(fn: (state: TxState) => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(this.closedError());
    if (this.current.getStore()?.open) {
      // Waiting for the queue from inside a transaction would wait for ourselves forever.
      return Promise.reject(new KilnError('INTERNAL', 'SQLite write issued inside a transaction: use the transaction handle'));
    }
    const state: TxState = { open: true };
    const result = this.tail
      .then(() => this.current.run(state, () => fn(state)))
      .finally(() => {
        state.open = false;
      });
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async rollback(cause: unknown): Promise<void> {
    try {
      await this.writer.run('ROLLBACK');
    } catch (err) {
      // SQLite already rolled back on its own after some errors (SQLITE_FULL, SQLITE_IOERR): nothing is open.
      if (/no transaction is active/.test(errorMessage(err))) return;
      throw new KilnError('INTERNAL', `rollback failed after: ${errorMessage(cause)}`, { cause: err });
    }
  }

  private closedError(): KilnError {
    return new KilnError('INTERNAL', `SQLite database ${this.path} is closed`);
  }
}

/** The executor a transaction's `fn` receives: the writer connection, refusing use after the transaction. */
function handle(conn: Connection, state: TxState): SqlExecutor {
  const check = (): void => {
    if (!state.open) throw new KilnError('INTERNAL', 'SQLite transaction handle used after its transaction ended');
  };
  return {
    run: async (sql, params) => {
      check();
      return conn.run(sql, params);
    },
    get: async <T>(sql: string, params?: readonly SqlValue[]) => {
      check();
      return conn.get<T>(sql, params);
    },
    all: async <T>(sql: string, params?: readonly SqlValue[]) => {
      check();
      return conn.all<T>(sql, params);
    },
    exec: async (sql) => {
      check();
      return conn.exec(sql);
    },
  };
}

/** Closes a connection whose setup failed; a close failure is reported together with the original error. */
async function closeAfterFailure(conn: Connection, original: unknown): Promise<void> {
  try {
    await conn.close();
  } catch (err) {
    throw new KilnError('INTERNAL', `${errorMessage(original)}; closing the database also failed: ${errorMessage(err)}`, { cause: original });
  }
}
