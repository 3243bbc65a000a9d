import { KilnError } from '../../oci/errors.js';

/** A point in a Dockerfile: 1-based line and column (UTF-16 code units, as editors count them). */
export interface SourcePosition {
  file: string;
  line: number;
  column: number;
}

/** The error every Dockerfile problem becomes: `file:line:col: what was wrong and what was expected`. */
export function dockerfileError(
  at: SourcePosition,
  message: string,
  options: { hint?: string; cause?: unknown } = {},
): KilnError<'DOCKERFILE_INVALID'> {
  return new KilnError('DOCKERFILE_INVALID', `${at.file}:${at.line}:${at.column}: ${message}`, {
    ...options,
    detail: { file: at.file, line: at.line, column: at.column },
  });
}

/** The candidate closest to `word` by edit distance, when close enough to be a likely typo. */
export function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const needle = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(needle, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // Same threshold idea as BuildKit's suggest package: a third of the word, at least one edit.
  const limit = Math.max(1, Math.floor(needle.length / 3));
  return best !== undefined && bestDistance <= limit ? best : undefined;
}

/** ` (did you mean X?)` when one candidate is close to `word`, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const match = closestMatch(word, candidates);
  return match === undefined ? '' : ` (did you mean ${match}?)`;
}

// Optimal string alignment distance: a swap of two neighbours counts as one edit (`chwon` → `chown`).
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [];
    for (let j = 0; j <= b.length; j++) {
      if (i === 0 || j === 0) {
        row.push(i + j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((rows[i - 1]?.[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (rows[i - 1]?.[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]?.[b.length] ?? 0;
}
