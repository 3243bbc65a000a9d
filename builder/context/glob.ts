import { KilnError } from '../../oci/errors.js';

// Go's path/filepath.Match grammar, which Dockerfile sources and --exclude use (Dockerfile reference § Pattern
// matching): '*' any run of non-'/' characters, '?' one non-'/' character, '[' ['^'] ranges ']', '\' escapes.

/** Throws VALIDATION when `pattern` is malformed for Go's filepath.Match (unclosed '[', bad range, trailing '\'). */
export function validateGlob(pattern: string, what = 'pattern'): void {
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\\') {
      if (i + 1 >= chars.length) throw badPattern(pattern, what, 'ends with an unescaped "\\"');
      i++;
    } else if (c === '[') {
      i = scanClass(chars, i, pattern, what);
    }
  }
}

/** Index of the ']' closing the class opened at `open`; throws on a malformed class. */
function scanClass(chars: string[], open: number, pattern: string, what: string): number {
  let i = open + 1;
  if (chars[i] === '^') i++;
  let ranges = 0;
  for (;;) {
    if (i >= chars.length) throw badPattern(pattern, what, 'has an unclosed "["');
    if (chars[i] === ']' && ranges > 0) return i;
    const lo = classChar(chars, i, pattern, what);
    i = lo.next;
    if (chars[i] === '-') {
      const hi = classChar(chars, i + 1, pattern, what);
      i = hi.next;
    }
    ranges++;
  }
}

function classChar(chars: string[], i: number, pattern: string, what: string): { char: string; next: number } {
  let c = chars[i];
  if (c === undefined || c === '-' || c === ']') throw badPattern(pattern, what, 'has a malformed character range');
  if (c === '\\') {
    c = chars[i + 1];
    if (c === undefined) throw badPattern(pattern, what, 'ends with an unescaped "\\"');
    return { char: c, next: i + 2 };
  }
  return { char: c, next: i + 1 };
}

function badPattern(pattern: string, what: string, why: string): KilnError {
  return new KilnError('VALIDATION', `${what} "${pattern}" ${why} (syntax: Go filepath.Match; escape a literal with "\\")`);
}

/** Go filepath.Match: true when all of `name` matches `pattern` ('/' is never matched by '*' or '?'). */
export function matchGlob(pattern: string, name: string): boolean {
  validateGlob(pattern);
  return matchFrom(Array.from(pattern), 0, Array.from(name), 0);
}

function matchFrom(p: string[], pi: number, s: string[], si: number): boolean {
  while (pi < p.length) {
    const c = p[pi] as string;
    if (c === '*') {
      // Collapse runs of '*' and try every split that does not cross a '/'.
      while (p[pi] === '*') pi++;
      if (pi === p.length) return !s.slice(si).includes('/');
      for (let k = si; k <= s.length; k++) {
        if (matchFrom(p, pi, s, k)) return true;
        if (s[k] === '/') return false;
      }
      return false;
    }
    const ch = s[si];
    if (ch === undefined) return false;
    if (c === '?') {
      if (ch === '/') return false;
      pi++;
    } else if (c === '[') {
      const { matched, next } = matchClass(p, pi, ch);
      if (!matched) return false;
      pi = next;
    } else if (c === '\\') {
      if (p[pi + 1] !== ch) return false;
      pi += 2;
    } else {
      if (c !== ch) return false;
      pi++;
    }
    si++;
  }
  return si === s.length;
}

function matchClass(p: string[], open: number, ch: string): { matched: boolean; next: number } {
  let i = open + 1;
  let negated = false;
  if (p[i] === '^') {
    negated = true;
    i++;
  }
  let inRange = false;
  let ranges = 0;
  const code = ch.codePointAt(0) ?? 0;
  for (;;) {
    if (p[i] === ']' && ranges > 0) break;
    const lo = readClassChar(p, i);
    let hi = lo;
    i = lo.next;
    if (p[i] === '-') {
      hi = readClassChar(p, i + 1);
      i = hi.next;
    }
    if (lo.code <= code && code <= hi.code) inRange = true;
    ranges++;
  }
  return { matched: inRange !== negated, next: i + 1 };
}

function readClassChar(p: string[], i: number): { code: number; next: number } {
  const c = p[i] as string;
  if (c === '\\') return { code: (p[i + 1] as string).codePointAt(0) ?? 0, next: i + 2 };
  return { code: c.codePointAt(0) ?? 0, next: i + 1 };
}

/** True when `name` has an unescaped '*', '?' or '[' (BuildKit's containsWildcards). */
export function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** Removes Go glob escapes from a pattern without wildcards, giving the literal path it names. */
export function unescapeGlob(pattern: string): string {
  return pattern.replace(/\\(.)/gsu, '$1');
}
