/** The escape characters a Dockerfile may choose with `# escape=`. */
export type EscapeChar = '\\' | '`';

/** The parser directives of a Dockerfile (`# syntax=`, `# escape=`, `# check=`). */
export interface Directives {
  /** The frontend image named by `# syntax=`, its first word (BuildKit ignores the rest). */
  syntax?: string;
  /** The escape and line-continuation character: `\` unless `# escape=` says otherwise. */
  escape: EscapeChar;
  /** The lint configuration of `# check=` (e.g. `skip=all`), its first word. */
  check?: string;
}

/** One directive as written, for tools that show where it came from. */
export interface DirectiveEntry {
  name: 'syntax' | 'escape' | 'check';
  /** The whole value, trimmed (`# syntax = img // opts` gives `img // opts`). */
  value: string;
  line: number;
}

// BuildKit's directive grammar: a name, '=', a value; whitespace as Go's regexp \s (ASCII only).
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;
const KNOWN = new Set(['syntax', 'escape', 'check']);

/** What `scan` found on one line. */
export type DirectiveResult =
  | { kind: 'none' }
  | { kind: 'directive'; entry: DirectiveEntry }
  | { kind: 'error'; message: string };

/**
 * Recognises parser directives while the Dockerfile is read line by line. Directives count only at the very
 * top: the first line that is not one (a blank line, another comment, an instruction) ends them for good.
 * Keys are case-insensitive, each may appear once (BuildKit rejects a repeat), and unknown keys are comments.
 */
export class DirectiveScanner {
  private done = false;
  private afterShebang = false;
  private readonly seen = new Set<string>();
  readonly entries: DirectiveEntry[] = [];
  readonly directives: Directives = { escape: '\\' };

  /** Looks at one line (leading whitespace already trimmed for the first line of an instruction). */
  scan(text: string, line: number): DirectiveResult {
    if (this.done) return { kind: 'none' };
    if (line === 1 && text.startsWith('#!')) {
      // A shebang: BuildKit's syntax detection skips it, while its parser then sees only comments, so only
      // `syntax` and `check` are still honoured below it.
      this.afterShebang = true;
      return { kind: 'none' };
    }
    if (!text.startsWith('#')) return this.stop();
    const match = DIRECTIVE.exec(text.slice(1).replace(/^\s+/, ''));
    if (match === null) return this.stop();
    const name = (match[1] ?? '').toLowerCase();
    const value = match[2] ?? '';
    if (!KNOWN.has(name)) return this.stop();
    if (this.afterShebang && name === 'escape') return this.stop();
    if (this.seen.has(name)) {
      return { kind: 'error', message: `only one ${name} parser directive can be used (remove the repeated "# ${name}=")` };
    }
    this.seen.add(name);
    const entry: DirectiveEntry = { name: name as DirectiveEntry['name'], value, line };
    if (entry.name === 'escape') {
      if (value !== '\\' && value !== '`') {
        return { kind: 'error', message: `invalid escape token '${value}' does not match \` or \\` };
      }
      this.directives.escape = value;
    } else {
      // BuildKit keeps the first word: `# syntax=docker/dockerfile:1 // comment` names docker/dockerfile:1.
      this.directives[entry.name] = value.split(' ')[0] ?? value;
    }
    this.entries.push(entry);
    return { kind: 'directive', entry };
  }

  private stop(): DirectiveResult {
    this.done = true;
    return { kind: 'none' };
  }
}
