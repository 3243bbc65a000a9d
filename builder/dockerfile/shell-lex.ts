/**
 * Dockerfile variable expansion and word splitting with the semantics of BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go): `$x`, `${x}`, `${x:-w}`, `${x-w}`, `${x:+w}`, `${x+w}`, `${x:?m}`, `${x?m}`,
 * `${x#p}`, `${x##p}`, `${x%p}`, `${x%%p}`, `${x/p/r}`, `${x//p/r}`, quotes, and the `# escape=` character.
 */
import { KilnError } from '../../oci/errors.js';

/** Looks a variable up; `undefined` means unset (an empty string is set). */
export type EnvLookup = (name: string) => string | undefined;

/** Lexer switches; the defaults are what BuildKit uses to expand instruction arguments. */
export interface ExpandOptions {
  /** The Dockerfile's escape character (`# escape=` directive); default `\`. */
  escape?: '\\' | '`';
  /** Keep quote characters in the output (BuildKit RawQuotes: heredoc-word detection, step names). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output (BuildKit RawEscapes). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (BuildKit SkipProcessQuotes: expanding COPY/ADD heredoc bodies). */
  skipQuotes?: boolean;
  /** Leave references to unset variables as written, e.g. `${X:-y}` (BuildKit SkipUnsetEnv). */
  keepUnset?: boolean;
}

/** Result of expandWordTracked: the value and which variable names it looked up, found or not. */
export interface TrackedExpansion {
  value: string;
  /** Names that were set (BuildKit "matched"): these decide the instruction's cache key. */
  used: Set<string>;
  /** Names referenced but unset (BuildKit "unmatched"): input for an undefined-variable warning. */
  unmatched: Set<string>;
}

/** Expands variables and removes quotes and escapes in one word (BuildKit ProcessWord), e.g. for COPY, ENV, WORKDIR. */
export function expandWord(word: string, env: EnvLookup | ReadonlyMap<string, string>, options: ExpandOptions = {}): string {
  return new Lexer(word, env, options).run().value;
}

/** Expands, then splits on unquoted whitespace (BuildKit ProcessWords, used for EXPOSE ports). */
export function expandWords(word: string, env: EnvLookup | ReadonlyMap<string, string>, options: ExpandOptions = {}): string[] {
  return new Lexer(word, env, options).run().words;
}

/** expandWord that also reports the variable names looked up (BuildKit ProcessWordWithMatches). */
export function expandWordTracked(
  word: string,
  env: EnvLookup | ReadonlyMap<string, string>,
  options: ExpandOptions = {},
): TrackedExpansion {
  const lexer = new Lexer(word, env, options);
  const { value } = lexer.run();
  return { value, used: lexer.used, unmatched: lexer.unmatched };
}

/** An expansion failure before the source word is known to the message; run() turns it into a KilnError. */
class LexError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const HINT_SUBSTITUTION = 'write $NAME, ${NAME} or ${NAME:-default}, or escape the $ as \\$';
const HINT_CLOSE = 'close the ${...} with }';
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);
const REGEXP_SYNTAX = new Set(['[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$']);
const SPACE = /^\p{White_Space}$/u;
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;

const isSpace = (ch: string): boolean => SPACE.test(ch);
const isDigit = (ch: string): boolean => DIGIT.test(ch);
const isNameChar = (ch: string): boolean => ch === '_' || LETTER.test(ch) || DIGIT.test(ch);

/** Code points of `text`; Go's text/scanner drops a leading byte-order mark, so we do too. */
function codePoints(text: string): string[] {
  const chars = Array.from(text);
  if (chars[0] === '\uFEFF') chars.shift();
  return chars;
}

/** Word splitting state of one processStopOn level: only unquoted whitespace that came from text ends a word. */
class Words {
  private buf = '';
  private readonly words: string[] = [];

  addChar(ch: string): void {
    if (!isSpace(ch)) this.buf += ch;
    else if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = '';
    }
  }

  addString(text: string): void {
    for (const ch of text) this.addChar(ch);
  }

  /** Quoted or escaped text: its whitespace does not split; an empty '' or "" alone makes no word. */
  addRaw(text: string): void {
    this.buf += text;
  }

  finish(): string[] {
    if (this.buf.length > 0) this.words.push(this.buf);
    this.buf = '';
    return this.words;
  }
}

class Lexer {
  readonly used = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  private readonly escape: string;
  private readonly lookup: EnvLookup;

  constructor(
    private readonly source: string,
    env: EnvLookup | ReadonlyMap<string, string>,
    private readonly options: ExpandOptions,
  ) {
    this.chars = codePoints(source);
    this.escape = options.escape ?? '\\';
    this.rawEscapes = options.rawEscapes ?? false;
    this.lookup = typeof env === 'function' ? env : (name) => env.get(name);
  }

  run(): { value: string; words: string[] } {
    try {
      const { text, words } = this.processUntil(undefined, this.rawEscapes);
      return { value: text, words };
    } catch (err) {
      if (!(err instanceof LexError)) throw err;
      throw new KilnError('DOCKERFILE_INVALID', `cannot expand ${JSON.stringify(this.source)}: ${err.message}`, {
        ...(err.hint === undefined ? {} : { hint: err.hint }),
      });
    }
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private getEnv(name: string): string | undefined {
    const value = this.lookup(name);
    (value === undefined ? this.unmatched : this.used).add(name);
    return value;
  }

  /** Reads up to `stop` (consumed) or the end; BuildKit's processStopOn. Each level splits its own words. */
  private processUntil(stop: string | undefined, rawEscapes: boolean): { text: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let text = '';
      const words = new Words();
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (ch === stop) {
          this.next();
          return { text, words: words.finish() };
        }
        const special = this.special(ch);
        if (special !== undefined) {
          const part = special();
          text += part;
          // Text from a variable is split on its whitespace; quoted text and heredoc markers stay one piece.
          if (ch === '$') words.addString(part);
          else words.addRaw(part);
          continue;
        }
        this.next();
        if (ch !== this.escape) {
          words.addChar(ch);
          text += ch;
          continue;
        }
        if (this.rawEscapes) {
          words.addRaw(ch);
          text += ch;
        }
        const escaped = this.next();
        if (escaped === undefined) break; // a trailing escape is dropped
        words.addRaw(escaped);
        text += escaped;
      }
      if (stop !== undefined) throw new LexError(`unexpected end of text while looking for matching ${stop}`);
      return { text, words: words.finish() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private special(ch: string): (() => string) | undefined {
    if (ch === '$') return () => this.processDollar();
    if (ch === '<') return () => this.processPossibleHeredoc();
    if (this.options.skipQuotes) return undefined;
    if (ch === "'") return () => this.processSingleQuote();
    if (ch === '"') return () => this.processDoubleQuote();
    return undefined;
  }

  /** Everything up to the next `'` is literal; a single quote cannot be escaped inside one. */
  private processSingleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next() ?? '';
    let out = raw ? open : '';
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unterminated single quote', "add the closing ', or escape the opening one");
      if (ch === "'") return raw ? out + ch : out;
      out += ch;
    }
  }

  /** Expands `$` inside; the escape character only escapes `"`, `$` and itself and is literal otherwise. */
  private processDoubleQuote(): string {
    const raw = this.options.rawQuotes ?? false;
    const open = this.next() ?? '';
    let out = raw ? open : '';
    for (;;) {
      const peeked = this.peek();
      if (peeked === undefined) throw new LexError('unterminated double quote', 'add the closing ", or escape the opening one');
      if (peeked === '"') {
        this.next();
        return raw ? out + peeked : out;
      }
      if (peeked === '$') {
        out += this.processDollar();
        continue;
      }
      let ch = this.next() ?? '';
      if (ch === this.escape) {
        if (this.rawEscapes) out += ch;
        const after = this.peek();
        if (after === undefined) continue; // reported as an unterminated quote on the next turn
        if (after === '"' || after === '$' || after === this.escape) ch = this.next() ?? '';
      }
      out += ch;
    }
  }

  /** `<<` and any blanks after it are passed through as one piece so the heredoc word stays attached. */
  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let out = '<<';
    for (let ch = this.peek(); ch === ' ' || ch === '\t' || ch === '\r'; ch = this.peek()) out += this.next() ?? '';
    return out;
  }

  /** A name after `$`: a run of digits (positional), one special parameter, or letters, digits and `_`. */
  private processName(): string {
    const first = this.peek();
    if (first === undefined) return '';
    if (isDigit(first)) {
      let digits = '';
      for (let ch = this.peek(); ch !== undefined && isDigit(ch); ch = this.peek()) digits += this.next() ?? '';
      return digits;
    }
    if (SPECIAL_PARAMS.has(first)) return this.next() ?? '';
    let name = '';
    for (let ch = this.peek(); ch !== undefined && isNameChar(ch); ch = this.peek()) name += this.next() ?? '';
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.options.keepUnset) return `$${name}`;
      return value ?? '';
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new LexError("missing '}'", HINT_CLOSE);
    if (first === '{' || first === '}' || first === ':') throw new LexError('bad substitution', HINT_SUBSTITUTION);
    const name = this.processName();
    const ch = this.next();
    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && this.options.keepUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === '/') return this.processReplace(name);
    if (ch === ':' || ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%') return this.processModifier(name, ch);
    if (ch === undefined) throw new LexError("missing '}'", HINT_CLOSE);
    throw new LexError(`unsupported modifier (${ch}) in substitution`, HINT_SUBSTITUTION);
  }

  /** `${name:-w}` and friends; `first` is the character after the name. */
  private processModifier(name: string, first: string): string {
    let op = first;
    let modifier = first;
    const nullIsUnset = first === ':';
    if (nullIsUnset) {
      const after = this.next();
      op = after ?? '';
      modifier += op;
    }
    const isTrim = op === '#' || op === '%';
    if (nullIsUnset && isTrim) throw new LexError(`unsupported modifier (${modifier}) in substitution`, HINT_SUBSTITUTION);
    const word = this.processNested('}', isTrim, "missing '}'", HINT_CLOSE);
    const value = this.getEnv(name);
    if (value === undefined && this.options.keepUnset) return `\${${name}${modifier}${word}}`;
    const empty = value === undefined || (nullIsUnset && value === '');
    switch (op) {
      case '-':
        return empty ? word : (value ?? '');
      case '+':
        return empty ? '' : word;
      case '?':
        if (value === undefined) throw new LexError(`${name}: ${word || 'is not allowed to be unset'}`, `set ${name} (ARG, ENV or --build-arg)`);
        if (empty) throw new LexError(`${name}: ${word || 'is not allowed to be empty'}`, `give ${name} a non-empty value`);
        return value;
      case '#':
      case '%': {
        // One # or % removes the shortest match, a doubled one the longest.
        const greedy = word.startsWith(op);
        const pattern = greedy ? word.slice(op.length) : word;
        return op === '#' ? trimPrefix(pattern, value ?? '', greedy) : trimSuffix(pattern, value ?? '', greedy);
      }
      default:
        throw new LexError(`unsupported modifier (${modifier}) in substitution`, HINT_SUBSTITUTION);
    }
  }

  /** `${name/pattern/replacement}` (first match) and `${name//pattern/replacement}` (every match). */
  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.processNested('/', true, "missing '/' in ${}", 'write ${NAME/pattern/replacement}');
    const replacement = this.processNested('}', true, "missing '}'", HINT_CLOSE);
    const value = this.getEnv(name);
    if (value === undefined && this.options.keepUnset) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegExp(pattern, true, false);
    return all ? replaceAllGo(re, value ?? '', replacement) : replaceFirst(re, value ?? '', replacement);
  }

  /** The text of a ${...} part; running off the end is reported as the missing terminator. */
  private processNested(stop: string, rawEscapes: boolean, missing: string, hint: string): string {
    try {
      return this.processUntil(stop, rawEscapes).text;
    } catch (err) {
      if (err instanceof LexError && this.peek() === undefined) throw new LexError(missing, hint);
      throw err;
    }
  }
}

/**
 * Shell pattern → RegExp as BuildKit converts it: `*` any run, `?` one character, `\` escapes `*`, `?` or `\`
 * (and is dropped before `}` or `/`); no bracket expressions. `.` in Go's RE2 does not match newline, hence `[^\n]`.
 */
function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = codePoints(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i] ?? '';
    if (tok === '*') out += greedy ? '[^\\n]*' : '[^\\n]*?';
    else if (tok === '?') out += '[^\\n]';
    else if (tok === '\\') {
      const after = chars[i + 1];
      if (after === '}' || after === '/') continue;
      if (after !== '*' && after !== '?' && after !== '\\') {
        const shown = after === undefined ? 'at the end' : `'\\${after}'`;
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape ${shown}`, 'only \\*, \\? and \\\\ are escapes in a pattern');
      }
      out += `\\${after}`;
      i++;
    } else out += REGEXP_SYNTAX.has(tok) ? `\\${tok}` : tok;
  }
  return new RegExp(out, 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const match = shellPatternToRegExp(pattern, greedy, true).exec(value);
  return match ? value.slice(match.index + match[0].length) : value;
}

/** Shortest/longest suffix via a prefix match on the reversed value and pattern (escapes stay before their char). */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

function reverse(text: string): string {
  return Array.from(text).reverse().join('');
}

function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const out: string[] = [];
  for (let i = 0; i < chars.length; ) {
    const tok = chars[i] ?? '';
    const after = chars[i + 1];
    if (tok === '\\' && after !== undefined) {
      out.unshift(tok, after);
      i += 2;
    } else {
      out.unshift(tok);
      i++;
    }
  }
  return out.join('');
}

function replaceFirst(re: RegExp, value: string, replacement: string): string {
  const match = re.exec(value);
  return match ? value.slice(0, match.index) + replacement + value.slice(match.index + match[0].length) : value;
}

/**
 * Go's Regexp.ReplaceAllString, which BuildKit uses for `${x//p/r}`: an empty match right after a match is skipped,
 * and the replacement is a template (`$$` → `$`, `$0`/`${0}` → the match, other `$name` → empty).
 */
function replaceAllGo(re: RegExp, value: string, template: string): string {
  const global = new RegExp(re.source, 'gu');
  let out = '';
  let lastEnd = 0;
  let searchPos = 0;
  while (searchPos <= value.length) {
    global.lastIndex = searchPos;
    const match = global.exec(value);
    if (!match) break;
    const start = match.index;
    const end = start + match[0].length;
    out += value.slice(lastEnd, start);
    if (end > lastEnd || start === 0) out += expandGoTemplate(template, match[0]);
    lastEnd = end;
    const width = searchPos >= value.length ? 0 : (value.codePointAt(searchPos) ?? 0) > 0xffff ? 2 : 1;
    if (searchPos + width > end) searchPos += width;
    else if (searchPos + 1 > end) searchPos++;
    else searchPos = end;
  }
  return out + value.slice(lastEnd);
}

const GO_TEMPLATE_NAME = /^(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u;

function expandGoTemplate(template: string, match: string): string {
  let out = '';
  let rest = template;
  for (let dollar = rest.indexOf('$'); dollar >= 0; dollar = rest.indexOf('$')) {
    out += rest.slice(0, dollar);
    rest = rest.slice(dollar + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = GO_TEMPLATE_NAME.exec(rest);
    if (!ref) {
      out += '$';
      continue;
    }
    // The pattern has no capture groups, so only group 0 (the whole match) can be named.
    if ((ref[1] ?? ref[2]) === '0') out += match;
    rest = rest.slice(ref[0].length);
  }
  return out + rest;
}
