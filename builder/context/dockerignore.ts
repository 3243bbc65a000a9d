import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { KilnError, errorMessage } from '../../oci/errors.js';
import { PatternMatcher, cleanPath } from './pattern-matcher.js';

/** The compiled .dockerignore of a build context; paths are relative to the context root. */
export type IgnoreMatcher = PatternMatcher;

/** Where the ignore rules came from and the matcher built from them. */
export interface LoadedIgnore {
  file: string;
  matcher: IgnoreMatcher;
}

/**
 * The patterns of an ignore file as Docker reads them (moby/patternmatcher ignorefile): BOM stripped, '#'
 * comment lines and blank lines skipped, each line trimmed and cleaned, a leading '/' removed.
 */
export function parseIgnoreFile(text: string): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/u, '').split(/\r?\n/u);
  for (const line of lines) {
    // A comment is recognised before trimming: " # x" is a pattern.
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern !== '') {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

/** Compiles ignore-file text; `source` names the file in errors. */
export function compileIgnore(text: string, source = '.dockerignore'): IgnoreMatcher {
  return PatternMatcher.compile(parseIgnoreFile(text), source);
}

/**
 * Loads the ignore rules for a context: `<Dockerfile name>.dockerignore` beside the Dockerfile wins (BuildKit),
 * else `<context>/.dockerignore`; undefined when neither exists.
 */
export async function loadDockerignore(options: { contextDir: string; dockerfile?: string }): Promise<LoadedIgnore | undefined> {
  const candidates: string[] = [];
  if (options.dockerfile !== undefined) {
    const df = resolve(options.dockerfile);
    candidates.push(join(dirname(df), `${basename(df)}.dockerignore`));
  }
  candidates.push(join(options.contextDir, '.dockerignore'));
  for (const file of candidates) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new KilnError('CONTEXT_INVALID', `cannot read ${file}: ${errorMessage(err)}`, { cause: err });
    }
    return { file, matcher: compileIgnore(text, file) };
  }
  return undefined;
}
