import { posix } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import { validateGlob } from './glob.js';

// The semantics of moby/patternmatcher, which .dockerignore, COPY --exclude and COPY --parents use: patterns
// anchored at the root, '**' spanning any number of components, '!' exceptions where the last match wins,
// and a pattern that matches a directory matching everything below it.

/** Per-pattern results for a directory, handed to its children so they need not re-test their parents. */
export type MatchState = readonly boolean[];

type Kind = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Pattern {
  text: string;
  exclusion: boolean;
  kind: Kind;
  regexp: RegExp | undefined;
}

/** Go's filepath.Clean for '/'-separated paths: no '.', no '..' past the start, no trailing '/'. */
export function cleanPath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** A compiled list of patterns; paths are '/'-separated and relative to the root the patterns are anchored at. */
export class PatternMatcher {
  readonly patterns: readonly string[];
  readonly hasExclusions: boolean;
  private readonly compiled: Pattern[];

  private constructor(compiled: Pattern[]) {
    this.compiled = compiled;
    this.patterns = compiled.map((p) => (p.exclusion ? `!${p.text}` : p.text));
    this.hasExclusions = compiled.some((p) => p.exclusion);
  }

  /** Compiles patterns (trimmed, cleaned, blanks skipped); throws VALIDATION naming `source` for a bad one. */
  static compile(patterns: readonly string[], source = 'pattern'): PatternMatcher {
    const compiled: Pattern[] = [];
    for (const raw of patterns) {
      let text = raw.trim();
      if (text === '') continue;
      text = cleanPath(text);
      let exclusion = false;
      if (text.startsWith('!')) {
        if (text.length === 1) throw new KilnError('VALIDATION', `${source}: illegal exclusion pattern "!" (write "!path" to re-include path)`);
        exclusion = true;
        text = text.slice(1);
      }
      validateGlob(text, `${source} pattern`);
      compiled.push(compilePattern(text, exclusion, source));
    }
    return new PatternMatcher(compiled);
  }

  /** True when `path` or one of its parent directories matches, and no later exception re-includes it. */
  matches(path: string): boolean {
    const parents = parentChain(path);
    let matched = false;
    for (const p of this.compiled) {
      // An inclusion can't change an already-matched result, nor an exclusion an unmatched one.
      if (p.exclusion !== matched) continue;
      let hit = test(p, path);
      if (!hit) hit = parents.some((dir) => test(p, dir));
      if (hit) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * The same answer as `matches` during a top-down walk: `parent` is the state returned for the directory
   * holding `path` (undefined at the top, where parents are tested directly).
   */
  matchesWithParent(path: string, parent: MatchState | undefined): { matched: boolean; state: MatchState } {
    const state: boolean[] = new Array<boolean>(this.compiled.length).fill(false);
    let matched = false;
    this.compiled.forEach((p, i) => {
      let hit = parent?.[i] ?? false;
      if (!hit) {
        if (p.exclusion !== matched) return;
        hit = test(p, path);
        if (!hit && parent === undefined) hit = parentChain(path).some((dir) => test(p, dir));
      }
      state[i] = hit;
      if (hit) matched = !p.exclusion;
    });
    return { matched, state };
  }
}

/** 'a/b/c' → ['a', 'a/b']. */
function parentChain(path: string): string[] {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

function test(p: Pattern, path: string): boolean {
  switch (p.kind) {
    case 'exact':
      return path === p.text;
    case 'prefix':
      return path.startsWith(p.text.slice(0, -2));
    case 'suffix': {
      const suffix = p.text.slice(2);
      // '**/foo' also matches 'foo' itself.
      return path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
    }
    case 'regexp':
      return (p.regexp as RegExp).test(path);
  }
}

/** Chooses the cheapest test as patternmatcher does (exact, '**' prefix/suffix, else a regular expression). */
function compilePattern(text: string, exclusion: boolean, source: string): Pattern {
  const chars = Array.from(text);
  let re = '^';
  let kind: Kind = 'exact';
  let inClass = false;
  for (let i = 0, step = 0; i < chars.length; step++) {
    const c = chars[i] as string;
    if (inClass) {
      if (c === ']') inClass = false;
      re += c === ']' || c === '^' || c === '-' ? c : c === '\\' ? escapeChar(chars[++i] ?? '\\', true) : escapeChar(c, true);
      i++;
      continue;
    }
    if (c === '*' && chars[i + 1] === '*') {
      i += 2;
      // '**/' is the same as '**'.
      if (chars[i] === '/') i++;
      if (i >= chars.length) {
        if (kind === 'exact') kind = 'prefix';
        else {
          re += '[^\\n]*';
          kind = 'regexp';
        }
      } else {
        // Any number of whole components, including none.
        re += '([^\\n]*/)?';
        kind = 'regexp';
      }
      if (step === 0) kind = 'suffix';
      continue;
    }
    i++;
    if (c === '*') {
      re += '[^/]*';
      kind = 'regexp';
    } else if (c === '?') {
      re += '[^/]';
      kind = 'regexp';
    } else if (c === '\\') {
      if (i < chars.length) {
        re += escapeChar(chars[i] as string, false);
        i++;
        kind = 'regexp';
      } else re += '\\\\';
    } else if (c === '[') {
      re += '[';
      inClass = true;
      kind = 'regexp';
      if (chars[i] === '^') {
        re += '^';
        i++;
      }
    } else {
      re += escapeChar(c, false);
    }
  }
  if (kind !== 'regexp') return { text, exclusion, kind, regexp: undefined };
  try {
    return { text, exclusion, kind, regexp: new RegExp(`${re}$`, 'u') };
  } catch (err) {
    throw new KilnError('VALIDATION', `${source} pattern "${text}" is not valid (${(err as Error).message})`, { cause: err });
  }
}

const REGEXP_SYNTAX = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

function escapeChar(c: string, inClass: boolean): string {
  if (REGEXP_SYNTAX.has(c)) return `\\${c}`;
  if (c === '-' && inClass) return '\\-';
  return c;
}
