/**
 * A here-document attached to RUN, COPY or ADD (`RUN <<EOF` … `EOF`). The content is kept as written; the
 * build decides what to do with it (a file for COPY, a script or shell input for RUN).
 */
export interface Heredoc {
  /** The delimiter word with its quotes removed (`<<'EOF'` → `EOF`); also the file name for COPY. */
  name: string;
  /** The lines between the instruction and the delimiter, each with its line ending, tabs not stripped. */
  content: string;
  /** False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`, `<<E"OF"`): no variable expansion. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from the content and the delimiter line. */
  chomp: boolean;
  /** The file descriptor written before `<<` (`RUN 3<<EOF`), when one is. */
  fd?: number;
}

/** A heredoc delimiter word as found on an instruction line, before its content is read. */
export type HeredocWord = Omit<Heredoc, 'content'>;

// BuildKit's heredoc word: optional fd, '<<', optional '-', optional (ASCII) blanks, a word without '<'.
const HEREDOC_WORD = /^(\d*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

/** The heredoc `word` introduces (`<<EOF`, `<<-'EOF'`, `3<<EOF`), or undefined when it introduces none. */
export function parseHeredocWord(word: string): HeredocWord | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (match === null) return undefined;
  const rest = match[3] ?? '';
  if (rest === '') return undefined;
  // Lex the delimiter with and without quote removal: if the quote counts differ, part of it was quoted.
  const words = lexWords(rest, { rawQuotes: false, rawEscapes: false });
  if (words.length !== 1) return undefined;
  const raw = lexWords(rest, { rawQuotes: true, rawEscapes: false });
  const name = words[0] ?? '';
  const expand = quoteCount(name) === quoteCount(raw[0] ?? '');
  const heredoc: HeredocWord = { name, expand, chomp: match[2] === '-' };
  if (match[1] !== undefined && match[1] !== '') heredoc.fd = Number.parseInt(match[1], 10);
  return heredoc;
}

/** The heredocs a (continuation-joined) instruction line opens, in order; quoted `"<<EOF"` opens none. */
export function heredocsInLine(line: string): HeredocWord[] {
  let words: string[];
  try {
    words = lexWords(line, { rawQuotes: true, rawEscapes: true });
  } catch {
    // An unbalanced quote elsewhere on the line: BuildKit then sees no heredoc at all, and neither do we.
    return [];
  }
  const out: HeredocWord[] = [];
  for (const word of words) {
    const heredoc = parseHeredocWord(word);
    if (heredoc !== undefined) out.push(heredoc);
  }
  return out;
}

/** The content of a `<<-` heredoc with leading tabs removed from every line. */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

/** The content as the build should use it: tab-stripped for `<<-`, as written otherwise. */
export function heredocBody(heredoc: Heredoc): string {
  return heredoc.chomp ? chompHeredoc(heredoc.content) : heredoc.content;
}

function quoteCount(s: string): number {
  let n = 0;
  for (const ch of s) if (ch === '"' || ch === "'") n++;
  return n;
}

interface LexOptions {
  /** Keep quote characters in the words. */
  rawQuotes: boolean;
  /** Keep escape characters in the words. */
  rawEscapes: boolean;
}

/**
 * Shell-style word splitting with an empty environment where unset variables stay as written: just enough of a
 * shell lexer to find heredoc delimiters the way BuildKit does (escape is always `\` here, as in BuildKit).
 * Throws on an unterminated quote or `${`.
 */
function lexWords(input: string, options: LexOptions): string[] {
  return new WordLexer(input, options).words();
}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

class WordLexer {
  private pos = 0;
  private readonly out: string[] = [];
  private buf = '';
  private inWord = false;

  constructor(
    private readonly input: string,
    private readonly options: LexOptions,
  ) {}

  words(): string[] {
    this.until(undefined);
    return this.out;
  }

  private peek(): string | undefined {
    return this.input[this.pos];
  }

  private next(): string | undefined {
    const ch = this.input[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  /** Reads to `stop` (consumed) or the end; returns the text read, feeding words only at top level. */
  private until(stop: string | undefined): string {
    const topLevel = stop === undefined;
    let result = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (ch === stop) {
        this.pos++;
        return result;
      }
      let piece: string;
      if (ch === '$') {
        piece = this.dollar();
        if (topLevel) for (const c of piece) this.addChar(c);
      } else if (ch === '<' || ch === "'" || ch === '"') {
        piece = ch === '<' ? this.possibleHeredoc() : ch === "'" ? this.singleQuoted() : this.doubleQuoted();
        if (topLevel) this.addRaw(piece);
      } else {
        this.pos++;
        piece = ch;
        if (ch === '\\') {
          const escaped = this.next();
          piece = this.options.rawEscapes ? ch : '';
          if (topLevel && this.options.rawEscapes) this.addRaw(ch);
          if (escaped === undefined) break;
          piece += escaped;
          if (topLevel) this.addRaw(escaped);
        } else if (topLevel) {
          this.addChar(ch);
        }
      }
      result += piece;
    }
    if (!topLevel) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
    if (this.buf.length > 0) this.out.push(this.buf);
    return result;
  }

  private addChar(ch: string): void {
    if (/\s/.test(ch)) {
      if (this.inWord && this.buf.length > 0) {
        this.out.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  private addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  private possibleHeredoc(): string {
    this.pos++;
    if (this.peek() !== '<') return '<';
    this.pos++;
    let result = '<<';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) {
      result += ch;
      this.pos++;
    }
    return result;
  }

  private singleQuoted(): string {
    this.pos++;
    let result = this.options.rawQuotes ? "'" : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return this.options.rawQuotes ? result + ch : result;
      result += ch;
    }
  }

  private doubleQuoted(): string {
    this.pos++;
    let result = this.options.rawQuotes ? '"' : '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.pos++;
        return this.options.rawQuotes ? result + ch : result;
      }
      if (ch === '$') {
        result += this.dollar();
        continue;
      }
      this.pos++;
      if (ch === '\\') {
        if (this.options.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === '$' || after === '\\') {
          result += after;
          this.pos++;
          continue;
        }
        // Any other escaped character keeps its backslash (written twice when escapes are raw, as BuildKit does).
        result += ch;
        continue;
      }
      result += ch;
    }
  }

  /** `$name` or `${…}` kept as written: the environment is empty and unset variables are not replaced. */
  private dollar(): string {
    this.pos++;
    if (this.peek() !== '{') {
      const name = this.name();
      return '$' + name;
    }
    this.pos++;
    const first = this.peek();
    if (first === undefined) throw new Error("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new Error('syntax error: bad substitution');
    const name = this.name();
    const op = this.next();
    if (op === '}') return '${' + name + '}';
    if (op === undefined) throw new Error("syntax error: missing '}'");
    const word = this.until('}');
    return '${' + name + op + word + '}';
  }

  private name(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && /[0-9]/.test(ch)) {
        while (this.peek() !== undefined && /[0-9]/.test(this.peek() ?? '')) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) {
        this.pos++;
        return ch;
      }
      if (!/[\p{L}\p{Nd}_]/u.test(ch)) break;
      name += ch;
      this.pos++;
    }
    return name;
  }
}
