import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { BlobStore } from '../../oci/content/blob-store.js';
import { FsBlobStore, isNotFound } from '../../oci/content/fs-blob-store.js';
import type { Digest } from '../../oci/digest.js';
import { isKilnError, KilnError } from '../../oci/errors.js';
import type { RepositorySnapshot, RepositorySweep } from '../db/gc-store.js';
import type { MetadataStore } from '../db/metadata-store.js';
import { type RetentionRule, retentionRuleFor } from '../retention.js';
import { planSweep } from './mark.js';

/** What `collectGarbage` works on and how. */
export interface CollectOptions {
  metadata: MetadataStore;
  blobs: BlobStore;
  /** Unreferenced blobs, links and manifests younger than this are kept (ms). */
  gracePeriodMs: number;
  retention?: readonly RetentionRule[];
  /** Decide and report, delete nothing. */
  dryRun?: boolean;
  /** Stops the run between steps (shutdown). */
  signal?: AbortSignal;
  /** Called after a repository lost tags or manifests (a server drops its cached manifests of it). */
  onSwept?: (repository: string) => void;
}

/** What a run removed (or, in a dry run, would remove). */
export interface GcReport {
  dryRun: boolean;
  /** Tags deleted by retention, and referrer tags that went with their manifest. */
  tags: Array<{ repository: string; tag: string }>;
  manifests: Array<{ repository: string; digest: Digest }>;
  /** Repository links to blobs no live manifest of the repository lists. */
  links: Array<{ repository: string; digest: Digest }>;
  /** Blob files deleted from storage. */
  blobs: Array<{ digest: Digest; size: number }>;
  bytesFreed: number;
  repositories: number;
  durationMs: number;
}

/** A GC lock silent this long belongs to a collector that died: it is taken over. */
const LOCK_STALE_MS = 10 * 60_000;
/** How often a running collector renews the lock. */
const HEARTBEAT_MS = 30_000;
/** Tombstones only have to outlive a request that checked before the sweep and writes after it. */
const TOMBSTONE_TTL_MS = 3600_000;
const PAGE = 500;

/**
 * Garbage collection and retention over a registry's metadata and blobs, safe beside a running server
 * (in the same process or another one sharing the sqlite database):
 * - each repository is read, judged (retention, then mark: see `planSweep`) and swept in one write
 *   transaction, so a manifest or tag stored during the run is either seen by the mark or stored after
 *   the sweep; in the latter case it can only reference what it checked before, and a trigger refuses it
 *   if the sweep removed that (the client gets MANIFEST_BLOB_UNKNOWN, never a dangling manifest);
 * - blob bytes go last, one transaction each, re-checking under the write lock that no link, no manifest
 *   and no upload session of the same size (one committing these bytes) refers to them; files younger
 *   than the grace period are not even considered.
 * Takes the GC lock in the database (not the server's data-directory lock); throws when another run holds it.
 */
export async function collectGarbage(options: CollectOptions): Promise<GcReport> {
  const { metadata, blobs, signal } = options;
  const dryRun = options.dryRun ?? false;
  const started = Date.now();
  const owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  let heartbeat = started;
  const holder = await metadata.lockGc(owner, started, started - LOCK_STALE_MS);
  if (holder) {
    throw new KilnError('REGISTRY', `another garbage collection is running (${holder.owner}, last seen ${new Date(holder.heartbeatAt).toISOString()})`, {
      hint: `it is taken over once silent for ${LOCK_STALE_MS / 60_000} minutes`,
      detail: { busy: true, ...holder },
    });
  }
  const renew = async (): Promise<void> => {
    signal?.throwIfAborted();
    const now = Date.now();
    if (now - heartbeat < HEARTBEAT_MS) return;
    heartbeat = now;
    const other = await metadata.lockGc(owner, now, now - LOCK_STALE_MS);
    if (other) throw new KilnError('REGISTRY', `garbage collection lost its lock to ${other.owner} (this run stalled for over ${LOCK_STALE_MS / 60_000} minutes)`);
  };
  const report: GcReport = { dryRun, tags: [], manifests: [], links: [], blobs: [], bytesFreed: 0, repositories: 0, durationMs: 0 };
  try {
    for (let last: string | undefined; ; ) {
      const page = await metadata.listRepositories({ n: PAGE, last });
      for (const repository of page) {
        await renew();
        const sweep = await sweepOne(options, repository, started, dryRun);
        if (!dryRun && sweep.tags.length + sweep.manifests.length > 0) options.onSwept?.(repository);
        report.repositories++;
        for (const tag of sweep.tags) report.tags.push({ repository, tag });
        for (const digest of sweep.manifests) report.manifests.push({ repository, digest });
        for (const digest of sweep.links) report.links.push({ repository, digest });
      }
      if (page.length < PAGE) break;
      last = page[page.length - 1];
    }
    const gone = dryRun ? plannedRemovals(report) : undefined;
    for await (const digest of blobs.list()) {
      await renew();
      const file = await blobFile(blobs, digest);
      if (!file || file.modifiedAt > started - options.gracePeriodMs) continue;
      const removed = gone ? await unusedAfter(metadata, digest, gone) : await deleteIfUnused(metadata, blobs, digest, file.size);
      if (!removed) continue;
      report.blobs.push({ digest, size: file.size });
      report.bytesFreed += file.size;
    }
  } finally {
    await metadata.unlockGc(owner, Date.now() - TOMBSTONE_TTL_MS);
  }
  report.durationMs = Date.now() - started;
  return report;
}

/** True for the error of `collectGarbage` when another collection holds the lock. */
export function isGcBusy(err: unknown): boolean {
  return isKilnError(err, 'REGISTRY') && (err.detail as { busy?: unknown } | undefined)?.busy === true;
}

/** Plans one repository and, unless a dry run, sweeps it; a repository with nothing to remove is only read. */
async function sweepOne(options: CollectOptions, repository: string, now: number, dryRun: boolean): Promise<RepositorySweep> {
  const rule = retentionRuleFor(options.retention ?? [], repository);
  const graceMs = options.gracePeriodMs;
  const judge = (snapshot: RepositorySnapshot): RepositorySweep =>
    planSweep(snapshot, { now, graceMs, untaggedMs: Math.max(graceMs, rule?.deleteUntaggedAfterMs ?? 0), keepLast: rule?.keepLast });
  const planned = await options.metadata.sweepRepository(repository, judge, { dryRun: true });
  if (dryRun || planned.tags.length + planned.manifests.length + planned.links.length === 0) return planned;
  // Judged again inside the write transaction: the repository may have changed since the read.
  return options.metadata.sweepRepository(repository, judge);
}

async function deleteIfUnused(metadata: MetadataStore, blobs: BlobStore, digest: Digest, size: number): Promise<boolean> {
  // Cheap read first: most blobs are in use, and the write lock is for the few that are not.
  if (await metadata.blobInUse(digest)) return false;
  return metadata.deleteBlobIfUnreferenced(digest, size, () => blobs.delete(digest));
}

/** Keys of the links and manifests a dry run would remove. */
function plannedRemovals(report: GcReport): Set<string> {
  return new Set([...report.links, ...report.manifests].map((r) => `${r.repository}\n${r.digest}`));
}

/** True when every link and manifest referring to the blob is among those a dry run would remove. */
async function unusedAfter(metadata: MetadataStore, digest: Digest, gone: ReadonlySet<string>): Promise<boolean> {
  const refs = await metadata.blobReferences(digest);
  return refs.links.every((r) => gone.has(`${r}\n${digest}`)) && refs.manifests.every((m) => gone.has(`${m.repository}\n${m.digest}`));
}

/** Size and modification time of a stored blob; undefined when it vanished meanwhile. */
async function blobFile(blobs: BlobStore, digest: Digest): Promise<{ size: number; modifiedAt: number } | undefined> {
  if (blobs instanceof FsBlobStore) {
    try {
      const st = await stat(blobs.path(digest));
      return { size: st.size, modifiedAt: st.mtimeMs };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  // Other stores have no modification time: the transactional re-check alone protects their blobs.
  const info = await blobs.stat(digest);
  return info && { size: info.size, modifiedAt: 0 };
}
