import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../../oci/digest.js';
import { migrate, MIGRATIONS, SCHEMA_VERSION, userVersion } from '../../../registry/db/migrations.js';
import { SqliteDatabase, type SqlExecutor } from '../../../registry/db/sqlite.js';
import { SqliteMetadataStore } from '../../../registry/db/sqlite-metadata-store.js';
import { describeMetadataStoreContract, manifestRecord } from './metadata-store.contract.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describeMetadataStoreContract('SqliteMetadataStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-meta-'));
  const store = await SqliteMetadataStore.open(join(dir, 'nested', 'metadata.db'));
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-sqlite-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('SqliteMetadataStore', () => {
  it('keeps its data across close and reopen', async () => {
    const path = join(dir, 'metadata.db');
    const record = manifestRecord('lib/app', 'durable', { blobs: [digestOf('layer')] });
    let store = await SqliteMetadataStore.open(path);
    await store.linkBlob('lib/app', digestOf('layer'), 5);
    await store.putManifest(record, 'v1');
    await store.createUpload({ id: 'u', repository: 'lib/app', offset: 3, createdAt: 1, updatedAt: 2 });
    await store.close();
    store = await SqliteMetadataStore.open(path);
    expect(await store.resolveTag('lib/app', 'v1')).toBe(record.digest);
    expect(await store.getManifest('lib/app', record.digest)).toEqual(record);
    expect(await store.blobSize('lib/app', digestOf('layer'))).toBe(5);
    expect(await store.getUpload('lib/app', 'u')).toMatchObject({ offset: 3 });
    await store.close();
  });

  it('applies migrations once, each in a transaction, and records user_version', async () => {
    const db = await SqliteDatabase.open(join(dir, 'm.db'));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(await migrate(db)).toEqual({ from: 0, to: SCHEMA_VERSION });
    expect(await userVersion(db)).toBe(SCHEMA_VERSION);
    expect(await migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
    expect(tables.map((t) => t.name)).toEqual(['blobs', 'gc_removed', 'gc_state', 'manifest_blobs', 'manifests', 'repositories', 'tags', 'uploads']);

    const broken = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, sql: 'CREATE TABLE half (a); SELECT nope FROM nowhere;' }];
    await expect(migrate(db, broken)).rejects.toThrow(/no such table: nowhere/);
    expect(await userVersion(db)).toBe(SCHEMA_VERSION);
    expect(await db.get("SELECT name FROM sqlite_schema WHERE name = 'half'")).toBeUndefined();
    await db.close();
  });

  it('refuses a database written by a newer kiln, leaving it untouched', async () => {
    const path = join(dir, 'future.db');
    const db = await SqliteDatabase.open(path);
    await db.exec('PRAGMA user_version = 999');
    await db.close();
    await expect(SqliteMetadataStore.open(path)).rejects.toThrow(`schema version 999, newer than this kiln supports (${SCHEMA_VERSION})`);
    const again = await SqliteDatabase.open(path);
    expect(await userVersion(again)).toBe(999);
    await again.close();
  });

  it('waits (busy_timeout) instead of failing when two stores share one file', async () => {
    const path = join(dir, 'shared.db');
    const a = await SqliteMetadataStore.open(path);
    const b = await SqliteMetadataStore.open(path);
    const records = Array.from({ length: 50 }, (_, i) => manifestRecord('shared', `m${i}`));
    await Promise.all(records.map((r, i) => (i % 2 ? a : b).putManifest(r, `t${i % 5}`)));
    expect(await a.listTags('shared')).toEqual(['t0', 't1', 't2', 't3', 't4']);
    for (const r of records) expect(await b.getManifest('shared', r.digest)).toBeDefined();
    await a.close();
    await b.close();
  });

  it('stays consistent after the writing process is killed with SIGKILL', async () => {
    const path = join(dir, 'crash.db');
    const { register, writer } = await writeCrashWriter(dir);
    const acked = new Set<Digest>();
    const deleting = new Set<Digest>();
    for (const killAfterMs of [0, 40, 150]) {
      await runUntilKilled(register, writer, path, killAfterMs, acked, deleting);
      const db = await SqliteDatabase.open(path);
      expect(await db.all('PRAGMA integrity_check')).toEqual([{ integrity_check: 'ok' }]);
      expect(await db.all('PRAGMA foreign_key_check')).toEqual([]);
      await db.close();

      const store = await SqliteMetadataStore.open(path);
      const tags = (await store.listTags('crash/app')) ?? [];
      expect(tags.length).toBeGreaterThan(0);
      for (const tag of tags) {
        const digest = await store.resolveTag('crash/app', tag);
        const manifest = digest && (await store.getManifest('crash/app', digest));
        expect(manifest && digestOf(manifest.bytes)).toBe(digest);
      }
      // Every write the child saw committed survived the kill.
      for (const digest of acked) {
        if (!deleting.has(digest)) expect(await store.getManifest('crash/app', digest)).toBeDefined();
      }
      await store.close();
    }
    expect(acked.size).toBeGreaterThan(0);
  });
});

describe('SqliteDatabase', () => {
  let db: SqliteDatabase;
  beforeEach(async () => {
    db = await SqliteDatabase.open(join(dir, 'plain.db'));
    await db.exec('CREATE TABLE t (v INTEGER); CREATE TABLE c (n INTEGER); INSERT INTO c VALUES (0);');
  });
  afterEach(() => db.close());
  const count = async () => (await db.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n;

  it('serialises interleaved async transactions (no lost updates)', async () => {
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(async (tx) => {
          const row = await tx.get<{ n: number }>('SELECT n FROM c');
          await new Promise((r) => setTimeout(r, 1));
          await tx.run('UPDATE c SET n = ?', [(row?.n ?? 0) + 1]);
        }),
      ),
    );
    expect(await db.get('SELECT n FROM c')).toEqual({ n: 20 });
  });

  it('answers parallel reads of one statement each with its own parameters', async () => {
    const values = Array.from({ length: 100 }, (_, i) => `v${i}`);
    const rows = await Promise.all(values.map((v) => db.get<{ v: string }>('SELECT ? AS v', [v])));
    expect(rows.map((r) => r?.v)).toEqual(values);
  });

  it('rolls back a transaction that throws, and stays usable', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.run('INSERT INTO t VALUES (1)');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await count()).toBe(0);
    await db.transaction((tx) => tx.run('INSERT INTO t VALUES (2)'));
    expect(await count()).toBe(1);
  });

  it('reads see committed data only', async () => {
    let inserted!: () => void;
    let release!: () => void;
    const insertedP = new Promise<void>((r) => (inserted = r));
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await t.run('INSERT INTO t VALUES (1)');
      expect((await t.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n).toBe(1);
      inserted();
      await gate;
    });
    await insertedP;
    expect(await count()).toBe(0);
    release();
    await tx;
    expect(await count()).toBe(1);
  });

  it('rejects a write through the database inside a transaction instead of deadlocking', async () => {
    await expect(db.transaction(() => db.run('INSERT INTO t VALUES (1)'))).rejects.toThrow(/inside a transaction/);
    await expect(db.transaction(() => db.transaction(async () => 1))).rejects.toThrow(/inside a transaction/);
    let leaked: SqlExecutor | undefined;
    await db.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked?.run('INSERT INTO t VALUES (1)')).rejects.toThrow(/after its transaction ended/);
    expect(await count()).toBe(0);
  });

  it('reports SQL errors as KilnError INTERNAL with the SQLite code', async () => {
    await expect(db.run('INSERT INTO missing VALUES (1)')).rejects.toMatchObject({ code: 'INTERNAL', detail: { sqlite: 'SQLITE_ERROR' } });
  });
});

/** Writes a child script that loops on the real store, loading its TypeScript through a transpiling loader hook. */
async function writeCrashWriter(dir: string): Promise<{ register: string; writer: string }> {
  const typescript = pathToFileURL(createRequire(import.meta.url).resolve('typescript')).href;
  const hooks = join(dir, 'ts-hooks.mjs');
  await writeFile(
    hooks,
    `import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
const ts = (await import(${JSON.stringify(typescript)})).default;
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
    const url = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const source = await readFile(fileURLToPath(url), 'utf8');
  const compilerOptions = { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 };
  return { format: 'module', source: ts.transpileModule(source, { compilerOptions }).outputText, shortCircuit: true };
}
`,
  );
  const register = join(dir, 'register.mjs');
  await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const writer = join(dir, 'crash-writer.mjs');
  const storeUrl = pathToFileURL(join(ROOT, 'registry/db/sqlite-metadata-store.ts')).href;
  await writeFile(
    writer,
    `import { createHash, randomBytes } from 'node:crypto';
const { SqliteMetadataStore } = await import(${JSON.stringify(storeUrl)});
const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const say = (line) => process.stdout.write(line + '\\n');
const store = await SqliteMetadataStore.open(process.argv[2]);
const recent = [];
for (let i = 0; ; i++) {
  const ops = [];
  for (let j = 0; j < 8; j++) {
    const bytes = randomBytes(100 + ((i * 8 + j) % 4000));
    const digest = sha(bytes);
    const layer = sha(bytes.subarray(0, 16));
    const record = { repository: 'crash/app', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes, blobs: [layer], manifests: [], createdAt: Date.now() };
    ops.push(store.linkBlob('crash/app', layer, 16).then(() => store.putManifest(record, 'tag-' + ((i + j) % 5))).then(() => { recent.push(digest); say('put ' + digest); }));
  }
  if (recent.length > 16 && i % 2 === 0) {
    const victim = recent.shift();
    say('deleting ' + victim);
    ops.push(store.deleteManifest('crash/app', victim));
  }
  await Promise.all(ops);
  if (i === 5) say('ready');
}
`,
  );
  return { register, writer };
}

/** Runs the writer until it has written a while, then kills it with SIGKILL mid-flight. */
function runUntilKilled(register: string, writer: string, path: string, killAfterMs: number, acked: Set<Digest>, deleting: Set<Digest>): Promise<void> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const child = spawn(process.execPath, ['--import', register, writer, path], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let pending = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    const lines = (pending + d.toString()).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const [word, value] = line.split(' ');
      const digest = value as Digest | undefined;
      if (word === 'put' && digest) acked.add(digest);
      else if (word === 'deleting' && digest) deleting.add(digest);
      else if (word === 'ready') setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    }
  });
  return new Promise((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal === 'SIGKILL') resolvePromise();
      else reject(new Error(`crash writer exited with ${String(code)} before being killed: ${stderr}`));
    });
  });
}
