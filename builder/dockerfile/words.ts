/**
 * How an instruction line becomes a name, flags and arguments, per instruction, as BuildKit's parser shapes them.
 * Nothing here expands variables or removes quotes from arguments: that is done later with the stage's environment.
 */

/** A problem with the arguments of one instruction; the parser adds the position. */
export class ArgumentError extends Error {
  override readonly name = 'ArgumentError';
}

/** Go's unicode.IsSpace: the Unicode White_Space property. */
export function isSpace(ch: string): boolean {
  return /^\p{White_Space}$/u.test(ch);
}

/** Go's strings.TrimSpace. */
export function trimSpace(s: string): string {
  return s.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '');
}

// The separators BuildKit splits whitespace-delimited arguments on (reWhitespace).
const BLANKS = /[\t\v\f\r ]+/;

/** An instruction line split into its name, its leading `--flags` and the rest. */
export interface SplitLine {
  command: string;
  /** Each `--flag[=value]` with quotes and escapes removed, in order; a lone `--` ends them and is dropped. */
  flags: string[];
  /** The arguments after the flags, trimmed. */
  rest: string;
  /** Where `rest` starts in the line. */
  restOffset: number;
}

/** Splits an instruction line into name, flags and arguments. */
export function splitCommand(line: string, escape: string): SplitLine {
  const trimmed = trimSpace(line);
  const sep = BLANKS.exec(trimmed);
  if (sep === null) return { command: trimmed, flags: [], rest: '', restOffset: line.length };
  const command = trimmed.slice(0, sep.index);
  const { flags, rest: remainder } = extractFlags(trimmed.slice(sep.index + sep[0].length), escape);
  const rest = trimSpace(remainder);
  const end = line.replace(/\p{White_Space}+$/u, '').length;
  return { command, flags, rest, restOffset: end - rest.length };
}

/** Leading `--name[=value]` words (quotes and escapes processed) and the remainder of the line. */
export function extractFlags(line: string, escape: string): { flags: string[]; rest: string } {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOk = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const ch = line[pos] ?? '';
    const atEnd = pos === line.length;
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      // Only a word starting with "--" is a flag; anything else starts the arguments.
      if (ch !== '-' || line[pos + 1] !== '-') return { flags: words, rest: line.slice(pos) };
      phase = 'word';
    }
    if (atEnd) {
      if (word !== '--' && (blankOk || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { flags: words, rest: line.slice(pos) };
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
        continue;
      }
      if (ch === escape) {
        if (pos + 1 === line.length) continue;
        pos++;
      }
      word += line[pos] ?? '';
      continue;
    }
    // phase === 'quote'
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === escape) {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
    }
    word += line[pos] ?? '';
  }
  return { flags: words, rest: '' };
}

/**
 * Splits on unquoted whitespace keeping quotes and escapes in the words (`a "b c"` → `a`, `"b c"`), as the
 * ENV, LABEL and ARG arguments are split before each word is processed on its own.
 */
export function parseWords(rest: string, escape: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let quote = '';
  let blankOk = false;
  let word = '';
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = chars[pos] ?? '';
    const atEnd = pos === chars.length;
    if (phase === 'spaces') {
      if (atEnd) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (atEnd) {
      if (blankOk || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOk || word.length > 0) words.push(word);
        word = '';
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = 'quote';
      }
      if (ch === escape) {
        if (pos + 1 === chars.length) continue;
        // An escape outside quotes keeps itself and the next character, even a quote.
        word += ch;
        pos++;
        ch = chars[pos] ?? '';
      }
      word += ch;
      continue;
    }
    // phase === 'quote'
    if (ch === quote) phase = 'word';
    if (ch === escape && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      pos++;
      ch = chars[pos] ?? '';
    }
    word += ch;
  }
  return words;
}

/** The strings of a JSON array, undefined when `rest` is not a JSON array; throws when it has non-strings. */
export function parseJsonArray(rest: string): string[] | undefined {
  const text = rest.replace(/^\p{White_Space}+/u, '');
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const out: string[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'string') {
      throw new ArgumentError('when using JSON array syntax, arrays must be comprised of strings only');
    }
    out.push(item);
  }
  return out;
}

/** The arguments of one instruction as the parser shapes them, and whether they were a JSON array. */
export interface ShapedArgs {
  args: string[];
  json: boolean;
}

/** Shapes the arguments of instruction `command` (lower case, anything but ONBUILD) from `rest`. */
export function shapeArguments(command: string, rest: string, escape: string): ShapedArgs {
  switch (command) {
    case 'add':
    case 'copy':
    case 'volume':
      return maybeJsonToList(rest);
    case 'run':
    case 'cmd':
    case 'entrypoint':
    case 'shell':
      return maybeJson(rest);
    case 'from':
    case 'expose':
      return { args: whitespaceDelimited(rest), json: false };
    case 'env':
      return { args: nameValuePairs(rest, 'ENV', escape), json: false };
    case 'label':
      return { args: nameValuePairs(rest, 'LABEL', escape), json: false };
    case 'arg':
      return { args: parseWords(rest, escape), json: false };
    case 'healthcheck':
      return healthcheck(rest);
    case 'maintainer':
    case 'user':
    case 'workdir':
    case 'stopsignal':
      return { args: rest === '' ? [] : [rest], json: false };
    default:
      // Unknown instructions keep no arguments; decoding reports them.
      return { args: [], json: false };
  }
}

function whitespaceDelimited(rest: string): string[] {
  return rest === '' ? [] : rest.split(BLANKS);
}

function maybeJson(rest: string): ShapedArgs {
  if (rest === '') return { args: [], json: false };
  const json = parseJsonArray(rest);
  return json === undefined ? { args: [rest], json: false } : { args: json, json: true };
}

function maybeJsonToList(rest: string): ShapedArgs {
  const json = parseJsonArray(rest);
  return json === undefined ? { args: whitespaceDelimited(rest), json: false } : { args: json, json: true };
}

/**
 * ENV and LABEL: `KEY value with spaces` (legacy: first word has no '=') or `k=v k2="v 2"`. Returns triples
 * key, value, separator ('' for the legacy form, '=' otherwise), values raw.
 */
function nameValuePairs(rest: string, instruction: string, escape: string): string[] {
  const words = parseWords(rest, escape);
  const first = words[0];
  if (first === undefined) return [];
  if (!first.includes('=')) {
    const sep = BLANKS.exec(rest);
    if (sep === null) {
      throw new ArgumentError(`${instruction} must have two arguments: ${instruction} ${rest} <value> or ${instruction} ${rest}=<value>`);
    }
    return [rest.slice(0, sep.index), rest.slice(sep.index + sep[0].length), ''];
  }
  const out: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new ArgumentError(`Syntax error - can't find = in ${JSON.stringify(word)}. Must be of the form: name=value`);
    }
    out.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return out;
}

/** HEALTHCHECK: a type word (CMD, NONE) then a command in shell or JSON form. */
function healthcheck(rest: string): ShapedArgs {
  let sep = 0;
  while (sep < rest.length && !isSpace(rest[sep] ?? '')) sep++;
  if (sep === 0) return { args: [], json: false };
  let next = sep;
  while (next < rest.length && isSpace(rest[next] ?? '')) next++;
  const cmd = maybeJson(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}
