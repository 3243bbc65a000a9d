import type { BigIntStats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, posix, resolve } from 'node:path';
import { createLimiter } from '../../oci/concurrency.js';
import { KilnError } from '../../oci/errors.js';
import type { IgnoreMatcher } from './dockerignore.js';
import { hasWildcards, matchGlob, unescapeGlob, validateGlob } from './glob.js';
import { PatternMatcher } from './pattern-matcher.js';
import { resolveInRoot, sourcePath } from './resolve.js';
import { kindOf, walkSource, type WalkItem } from './source-walk.js';
import { hashFile, type StatCache } from './stat-cache.js';

/** Where a COPY/ADD reads from: the build context, a stage's rootfs, a named context. */
export interface CopySource {
  root: string;
  ignore?: IgnoreMatcher;
  statCache?: StatCache;
  /** 'context', a stage name…: used in messages. */
  name: string;
}

/** A local path a copy reads, with the digest of its content when it is a file. */
export interface SourceFile {
  abs: string;
  /** Path relative to the source root. */
  rootRel: string;
  stat: BigIntStats;
  kind: WalkItem['kind'];
  sha256?: string;
  /** Target of a symlink. */
  linkname?: string;
}

/** What one source argument contributes, in the order BuildKit copies it. */
export type CopyUnit =
  /** A file (a top-level symlink already followed) landing at dest, or in dest as `name`. */
  | { type: 'file'; name: string; file: SourceFile; fromWildcard: boolean }
  /** A directory whose contents (not itself) land in dest. */
  | { type: 'tree'; dir: SourceFile; items: (SourceFile & { rel: string })[] }
  /** --parents: paths below `dir` kept at their relative path under dest. */
  | { type: 'parents'; dir: SourceFile; items: (SourceFile & { rel: string })[] };

/** Options for `collectLocalSources`. */
export interface CollectOptions {
  source: CopySource;
  patterns: string[];
  excludes: string[];
  parents: boolean;
  instruction: 'COPY' | 'ADD';
  /** Leave `sha256` (and symlinks' `linkname`) unset, for `digestUnits` to fill later. */
  deferDigests?: boolean;
}

const hashLimit = createLimiter(16);

/** Resolves local source arguments into copy units, applying .dockerignore, --exclude and --parents. */
export async function collectLocalSources(options: CollectOptions): Promise<CopyUnit[]> {
  const exclude = options.excludes.length > 0 ? PatternMatcher.compile(options.excludes, '--exclude') : undefined;
  const units: CopyUnit[] = [];
  for (const arg of options.patterns) {
    if (options.parents) units.push(...(await parentsUnit(arg, options, exclude)));
    else units.push(...(await plainUnits(arg, options, exclude)));
  }
  if (!options.deferDigests) await digestUnits(units, options.source);
  return units;
}

function where(source: CopySource): string {
  return source.name === 'context' ? 'build context' : source.name;
}

function notFound(arg: string, options: CollectOptions, ignored: boolean): KilnError {
  return new KilnError('CONTEXT_INVALID', `${options.instruction} failed: "${arg}" not found in ${where(options.source)}`, {
    ...(ignored
      ? { hint: `"${arg}" is excluded by .dockerignore: remove the matching pattern (or add "!${arg}") to send it` }
      : {}),
  });
}

async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** A path of the source as the copy sees it: followed within the root, and absent when .dockerignore drops it. */
async function visible(rel: string, options: CollectOptions): Promise<{ file: SourceFile | undefined; ignored: boolean }> {
  const { root, ignore } = options.source;
  const resolved = await resolveInRoot(root, rel, true);
  const abs = join(root, resolved);
  const stat = await lstatOrUndefined(abs);
  if (!stat) return { file: undefined, ignored: false };
  const file: SourceFile = { abs, rootRel: resolved, stat, kind: kindOf(stat) };
  if (ignore && resolved !== '' && (ignore.matches(resolved) || (rel !== resolved && ignore.matches(rel)))) {
    // An ignored directory is still sent when an exception re-includes something below it.
    if (file.kind === 'directory' && ignore.hasExclusions) return { file, ignored: false };
    return { file: undefined, ignored: true };
  }
  return { file, ignored: false };
}

async function plainUnits(arg: string, options: CollectOptions, exclude: PatternMatcher | undefined): Promise<CopyUnit[]> {
  const { rel } = sourcePath(arg, where(options.source), options.instruction);
  if (!hasWildcards(rel)) {
    const literal = unescapeGlob(rel);
    const { file, ignored } = await visible(literal, options);
    if (!file) throw notFound(arg, options, ignored);
    return [await unitFor(file, posix.basename(literal), false, options, exclude)];
  }
  validateGlob(rel, `${options.instruction} source`);
  const parts = rel.split('/');
  const firstWild = parts.findIndex(hasWildcards);
  const baseRel = unescapeGlob(parts.slice(0, firstWild).join('/'));
  const rest = parts.slice(firstWild).join('/');
  const base = await visible(baseRel, options);
  if (!base.file || base.file.kind !== 'directory') return [];
  const matches = await globBelow(base.file, rest, parts.length - firstWild, options);
  const units: CopyUnit[] = [];
  for (const m of matches) {
    // --exclude also filters what the wildcard itself matched, relative to the wildcard's directory.
    if (exclude?.matches(m.relToBase)) continue;
    const { file } = await visible(m.rootRel, options);
    if (file) units.push(await unitFor(file, posix.basename(m.rootRel), true, options, exclude));
  }
  return units;
}

/** Paths `depth` components below `base` whose relative path matches `pattern` (Go filepath.Match). */
async function globBelow(base: SourceFile, pattern: string, depth: number, options: CollectOptions): Promise<{ rootRel: string; relToBase: string }[]> {
  const out: { rootRel: string; relToBase: string }[] = [];
  const { ignore } = options.source;
  const visit = async (abs: string, rel: string, level: number): Promise<void> => {
    const names = (await readdir(abs, { withFileTypes: true })).sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    for (const d of names) {
      const childRel = rel === '' ? d.name : `${rel}/${d.name}`;
      const rootRel = base.rootRel === '' ? childRel : `${base.rootRel}/${childRel}`;
      const ignored = ignore?.matches(rootRel) ?? false;
      if (level === depth) {
        if (matchGlob(pattern, childRel) && (!ignored || (d.isDirectory() && ignore?.hasExclusions))) out.push({ rootRel, relToBase: childRel });
      } else if (d.isDirectory() && (!ignored || ignore?.hasExclusions)) {
        await visit(join(abs, d.name), childRel, level + 1);
      }
    }
  };
  await visit(base.abs, '', 1);
  return out;
}

async function unitFor(file: SourceFile, name: string, fromWildcard: boolean, options: CollectOptions, exclude: PatternMatcher | undefined): Promise<CopyUnit> {
  if (file.kind === 'directory') {
    const items = await walkSource(file.abs, file.rootRel, { ignore: options.source.ignore, exclude });
    return { type: 'tree', dir: file, items };
  }
  if (file.kind !== 'file') {
    throw new KilnError('CONTEXT_INVALID', `${options.instruction} failed: "${file.rootRel}" in ${where(options.source)} is not a regular file or directory`);
  }
  return { type: 'file', name, file, fromWildcard };
}

async function parentsUnit(arg: string, options: CollectOptions, exclude: PatternMatcher | undefined): Promise<CopyUnit[]> {
  // An optional "/./" pivot: only the components after it are kept (Dockerfile reference § COPY --parents).
  const pivot = arg.indexOf('/./');
  const baseArg = pivot >= 0 ? arg.slice(0, pivot) : '/';
  const patternArg = pivot >= 0 ? arg.slice(pivot + 3) : arg;
  const { rel: baseRel } = sourcePath(baseArg, where(options.source), options.instruction);
  const { rel: pattern } = sourcePath(patternArg, where(options.source), options.instruction);
  const base = await visible(unescapeGlob(baseRel), options);
  const required = !hasWildcards(baseRel) && !hasWildcards(pattern);
  if (!base.file || base.file.kind !== 'directory') {
    if (required || !base.file) {
      if (required || base.ignored) throw notFound(arg, options, base.ignored);
      return [];
    }
    throw new KilnError('CONTEXT_INVALID', `${options.instruction} --parents failed: "${baseArg}" is not a directory`);
  }
  if (required) {
    const target = await visible(posix.join(base.file.rootRel, unescapeGlob(pattern)), options);
    if (!target.file) throw notFound(arg, options, target.ignored);
  }
  const include = pattern === '' ? undefined : PatternMatcher.compile([pattern], '--parents source');
  const items = await walkSource(base.file.abs, base.file.rootRel, { ignore: options.source.ignore, include, exclude });
  return [{ type: 'parents', dir: base.file, items }];
}

/**
 * Fills `sha256` of every file, through the stat cache when it belongs to this source root; `known` holds digests
 * already made from the files' bytes by absolute path (by the layer writer), which are taken and not read again.
 */
export async function digestUnits(units: CopyUnit[], source: CopySource, known?: ReadonlyMap<string, string>): Promise<void> {
  const cache = source.statCache && source.statCache.root === resolve(source.root) ? source.statCache : undefined;
  const files: SourceFile[] = [];
  for (const u of units) {
    if (u.type === 'file') files.push(u.file);
    else for (const item of u.items) if (item.kind === 'file' || item.kind === 'symlink') files.push(item);
  }
  await Promise.all(
    files.map((f) =>
      hashLimit(async () => {
        const sha256 = f.kind === 'symlink' ? undefined : known?.get(f.abs);
        if (f.kind === 'symlink') f.linkname = await readlink(f.abs);
        else if (sha256 !== undefined) {
          f.sha256 = sha256;
          cache?.remember(f.rootRel, f.stat, sha256);
        } else f.sha256 = cache ? await cache.digest(f.rootRel, f.stat) : await hashFile(f.abs);
      }),
    ),
  );
}
