import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { FsBlobStore } from '../../oci/content/fs-blob-store.js';
import { KilnError } from '../../oci/errors.js';
import type { GcReport } from '../../registry/gc/collect.js';
import { addFormatFlag } from '../common.js';
import { formatBytes, outputSettings, printJson, printResult, printWarning } from '../output.js';

interface GcFlags {
  config?: string;
  data?: string;
  dryRun?: boolean;
  gracePeriod?: string;
  format: string;
}

/** `kiln gc`: garbage collection and retention over a registry data directory, safe while `kiln serve` runs on it. */
export function registerGc(program: Command): void {
  const cmd = program
    .command('gc')
    .description('delete unreferenced manifests and blobs and apply retention rules in a kiln serve data directory')
    .option('--config <file>', 'kiln serve configuration (gc.gracePeriod, retention, storage.filesystem.rootdirectory)')
    .option('--data <dir>', 'data directory (default: the configuration\'s, else ./kiln-data)')
    .option('--dry-run', 'list what would be deleted; delete nothing')
    .option('--grace-period <duration>', 'keep unreferenced data younger than this, e.g. 1h, 30m, 0 (default: gc.gracePeriod, 1h)');
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
Marks from every tag: a live manifest keeps its config and layers, the entries of an index and its
referrers (manifests whose subject it is); a sha256-<hex>[.sig|.att] tag lives as long as the image it
names. Then deletes, once older than the grace period: manifests nothing keeps alive (untagged ones
after retention's deleteUntaggedAfter where a rule sets it), repository links to blobs no live
manifest lists, and blob files nothing links or lists. Retention rules (first matching glob wins):
  retention:
    - repository: "ci/**"
      keepLast: 10              # ordinary tags, most recently pushed first; sha256-… tags exempt
      deleteUntaggedAfter: 24h  # at least gc.gracePeriod

Safe against the data of a running kiln serve (its own process, sharing the sqlite database): every
repository is swept in one transaction, blobs are re-checked under the database write lock, and a
push racing the collector fails cleanly (MANIFEST_BLOB_UNKNOWN) instead of storing a dangling
manifest. One collection runs at a time (a lock in the database; kiln serve skips its online run).

Prints what was deleted and a summary on stdout (--format json: the full report).

Examples:
  kiln gc --data /srv/registry --dry-run
  kiln gc --config /etc/kiln/config.yml
  kiln gc --data ./kiln-data --grace-period 0 --format json`,
  );
  cmd.action(async (flags: GcFlags) => {
    const settings = outputSettings({ format: flags.format });
    // Loaded here, not at start-up: sqlite3 and the registry modules would slow every kiln command.
    const [{ loadConfig }, { SqliteMetadataStore }, { collectGarbage }, { parseDuration }] = await Promise.all([
      import('../../registry/config.js'),
      import('../../registry/db/sqlite-metadata-store.js'),
      import('../../registry/gc/collect.js'),
      import('../../registry/gc/config.js'),
    ]);
    const { config, warnings } = await loadConfig({ file: flags.config, env: process.env, flags: { data: flags.data } });
    for (const warning of warnings) printWarning(warning, settings);
    let gracePeriodMs = config.gc.gracePeriodMs;
    if (flags.gracePeriod !== undefined) {
      const parsed = parseDuration(flags.gracePeriod);
      if (parsed === undefined) throw new KilnError('USAGE', `invalid --grace-period "${flags.gracePeriod}": expected a duration such as 1h, 30m or 0`);
      gracePeriodMs = parsed;
    }
    const data = resolve(config.data);
    const database = join(data, 'metadata.sqlite');
    // Never create an empty registry where the user pointed by mistake.
    await access(database).catch((err: unknown) => {
      throw new KilnError('USAGE', `${data} holds no kiln serve data (no metadata.sqlite)`, { cause: err, hint: 'pass --data DIR or --config FILE of the registry' });
    });
    const metadata = await SqliteMetadataStore.open(database);
    try {
      const blobs = new FsBlobStore({ root: join(data, 'blobs'), tmpDir: join(data, 'tmp') });
      const report = await collectGarbage({ metadata, blobs, gracePeriodMs, retention: config.retention, dryRun: flags.dryRun ?? false });
      if (settings.json) printJson(report);
      else printResult(formatReport(report));
    } finally {
      await metadata.close();
    }
  });
}

/** One line per deletion, then the summary. */
function formatReport(r: GcReport): string {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const lines = [
    ...r.tags.map((t) => `${verb} tag      ${t.repository}:${t.tag}`),
    ...r.manifests.map((m) => `${verb} manifest ${m.repository}@${m.digest}`),
    ...r.links.map((l) => `${verb} link     ${l.repository} -> ${l.digest}`),
    ...r.blobs.map((b) => `${verb} blob     ${b.digest} (${formatBytes(b.size)})`),
  ];
  const counts = `${plural(r.tags.length, 'tag')}, ${plural(r.manifests.length, 'manifest')}, ${plural(r.links.length, 'blob link')}, ${plural(r.blobs.length, 'blob')}`;
  lines.push(`${r.dryRun ? 'would free' : 'freed'} ${formatBytes(r.bytesFreed)}: ${verb} ${counts} in ${plural(r.repositories, 'repository', 'repositories')} (${r.durationMs} ms)`);
  return lines.join('\n');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
