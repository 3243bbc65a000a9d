import type { Digest } from '../../oci/digest.js';
import type { ManifestNode, RepositorySnapshot, RepositorySweep, TagRow } from '../db/gc-store.js';
import { isReferrerTag, referrerTagSubject, tagsBeyondKeepLast } from '../retention.js';

/** How one repository is judged. */
export interface MarkOptions {
  /** The time the run started (ms since the epoch): every age is measured against it. */
  now: number;
  /** Unreferenced blob links younger than this are kept (uploads whose manifest is still to come). */
  graceMs: number;
  /** Unreferenced manifests younger than this are kept; at least `graceMs`. */
  untaggedMs: number;
  /** Retention: ordinary tags kept, most recently written first. */
  keepLast?: number | undefined;
}

/**
 * Mark and plan the sweep of one repository (a pure function of its snapshot):
 * 1. retention deletes ordinary tags beyond `keepLast` (signature and referrer tags are exempt);
 * 2. roots are the remaining ordinary tags and manifests younger than `untaggedMs`;
 * 3. a live manifest keeps alive its index entries and its referrers (manifests whose subject it is);
 * 4. a `sha256-<hex>[.sig|.att|…]` tag is a root once the manifest it names is live, or when that manifest is
 *    not in the repository at all (signatures stored apart from their image): it never outlives its image here;
 * 5. everything else is swept, and so are links to blobs no live manifest lists once older than `graceMs`.
 */
export function planSweep(snapshot: RepositorySnapshot, options: MarkOptions): RepositorySweep {
  const { now } = options;
  const nodes = new Map<Digest, ManifestNode>(snapshot.manifests.map((m) => [m.digest, m]));
  const referrers = new Map<Digest, Digest[]>();
  for (const m of snapshot.manifests) {
    if (m.subject === undefined) continue;
    const list = referrers.get(m.subject);
    if (list) list.push(m.digest);
    else referrers.set(m.subject, [m.digest]);
  }
  const retired = new Set(options.keepLast === undefined ? [] : tagsBeyondKeepLast(snapshot.tags, options.keepLast).map((t) => t.tag));

  const live = new Set<Digest>();
  const stack: Digest[] = [];
  const visit = (digest: Digest): void => {
    if (live.has(digest) || !nodes.has(digest)) return;
    live.add(digest);
    stack.push(digest);
  };
  const propagate = (): void => {
    for (let digest = stack.pop(); digest !== undefined; digest = stack.pop()) {
      const node = nodes.get(digest);
      for (const child of node?.manifests ?? []) visit(child);
      for (const referrer of referrers.get(digest) ?? []) visit(referrer);
    }
  };

  let pending: TagRow[] = [];
  for (const t of snapshot.tags) {
    if (retired.has(t.tag)) continue;
    if (isReferrerTag(t.tag)) pending.push(t);
    else visit(t.digest);
  }
  for (const m of snapshot.manifests) if (m.createdAt > now - options.untaggedMs) visit(m.digest);
  propagate();
  // Referrer tags depend on liveness, which they extend: repeat until no tag joins.
  for (let progressed = true; progressed && pending.length > 0; ) {
    progressed = false;
    const waiting: TagRow[] = [];
    for (const t of pending) {
      const subject = namedManifest(t.tag, nodes);
      if (subject === undefined || live.has(subject)) {
        visit(t.digest);
        progressed = true;
      } else waiting.push(t);
    }
    pending = waiting;
    propagate();
  }

  const manifests = snapshot.manifests.filter((m) => !live.has(m.digest)).map((m) => m.digest);
  const dead = new Set(manifests);
  const tags = snapshot.tags.filter((t) => retired.has(t.tag) || dead.has(t.digest)).map((t) => t.tag);
  const used = new Set<Digest>();
  for (const digest of live) {
    const node = nodes.get(digest);
    for (const d of node?.blobs ?? []) used.add(d);
    for (const d of node?.manifests ?? []) used.add(d);
  }
  const links = snapshot.links.filter((l) => !used.has(l.digest) && l.linkedAt <= now - options.graceMs).map((l) => l.digest);
  return { tags, manifests, links };
}

/** The manifest of this repository a referrer tag names (matched by prefix: the schema truncates long digests). */
function namedManifest(tag: string, nodes: ReadonlyMap<Digest, ManifestNode>): Digest | undefined {
  const named = referrerTagSubject(tag);
  if (named === undefined) return undefined;
  if (nodes.has(named as Digest)) return named as Digest;
  // Only a sha512 name is truncated (to 64 hex characters); a full-length name either matched or is absent.
  if (!named.startsWith('sha512:') || named.length >= 'sha512:'.length + 128) return undefined;
  for (const digest of nodes.keys()) if (digest.startsWith(named)) return digest;
  return undefined;
}
