import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join, posix } from 'node:path';
import type { MatchState, PatternMatcher } from './pattern-matcher.js';

/** One path met while walking a copy source; `rel` is relative to the walked directory. */
export interface WalkItem {
  rel: string;
  /** Path relative to the source root (what .dockerignore and the stat cache see). */
  rootRel: string;
  abs: string;
  stat: BigIntStats;
  kind: 'file' | 'directory' | 'symlink' | 'other';
}

/** The filters of one walk; each is optional. */
export interface WalkFilters {
  /** .dockerignore of the source root, tested on `rootRel`. */
  ignore?: PatternMatcher | undefined;
  /** --parents include pattern, tested on `rel`. */
  include?: PatternMatcher | undefined;
  /** --exclude patterns, tested on `rel`. */
  exclude?: PatternMatcher | undefined;
}

/** The kind of a stat. */
export function kindOf(st: BigIntStats): WalkItem['kind'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

interface Level {
  ignore: MatchState | undefined;
  include: MatchState | undefined;
  exclude: MatchState | undefined;
}

/**
 * Every path below `dir` (not `dir` itself) that the filters select, parents before children, siblings in byte
 * order. A directory that is not selected itself but may hold selected paths (an exception pattern, an include
 * pattern deeper down) is walked, and listed only when something below it is — as BuildKit's copier creates
 * such parents lazily. Symlinks are listed, never followed. The walk uses synchronous calls on purpose: from the
 * page cache an lstat takes microseconds, while a promise round trip through the libuv pool costs several times
 * that, so a 20,000-file context is walked in a fraction of the time (what a no-op rebuild mostly is).
 */
export async function walkSource(dir: string, rootRel: string, filters: WalkFilters): Promise<WalkItem[]> {
  const out: WalkItem[] = [];
  await walkLevel(dir, '', rootRel, filters, { ignore: undefined, include: undefined, exclude: undefined }, [], out);
  return out;
}

/** An unselected ancestor directory, listed once a descendant is selected. */
interface Pending {
  item: WalkItem;
  listed: boolean;
}

async function walkLevel(abs: string, rel: string, rootRel: string, f: WalkFilters, parent: Level, chain: Pending[], out: WalkItem[]): Promise<void> {
  const names = readdirSync(abs).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  const stats = names.map((name) => lstatSync(join(abs, name), { bigint: true }));
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const st = stats[i] as BigIntStats;
    const childRel = rel === '' ? name : `${rel}/${name}`;
    const childRootRel = rootRel === '' ? childRel : posix.join(rootRel, childRel);
    const item: WalkItem = { rel: childRel, rootRel: childRootRel, abs: join(abs, name), stat: st, kind: kindOf(st) };
    const level: Level = { ignore: undefined, include: undefined, exclude: undefined };
    let selected = true;
    let mayHoldSelected = true;
    if (f.ignore) {
      const r = f.ignore.matchesWithParent(childRootRel, parent.ignore);
      level.ignore = r.state;
      if (r.matched) {
        selected = false;
        mayHoldSelected &&= f.ignore.hasExclusions;
      }
    }
    if (f.include) {
      const r = f.include.matchesWithParent(childRel, parent.include);
      level.include = r.state;
      if (!r.matched) selected = false;
    }
    if (f.exclude) {
      const r = f.exclude.matchesWithParent(childRel, parent.exclude);
      level.exclude = r.state;
      if (r.matched) {
        selected = false;
        mayHoldSelected &&= f.exclude.hasExclusions;
      }
    }
    if (selected) {
      for (const p of chain) {
        if (p.listed) continue;
        p.listed = true;
        out.push(p.item);
      }
      out.push(item);
    }
    if (item.kind === 'directory' && (selected || mayHoldSelected)) {
      await walkLevel(item.abs, childRel, rootRel, f, level, selected ? [] : [...chain, { item, listed: false }], out);
    }
  }
}
