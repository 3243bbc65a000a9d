import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expandWord, expandWords, expandWordTracked, type ExpandOptions } from '../../../builder/dockerfile/shell-lex.js';
import { isKilnError } from '../../../oci/errors.js';

// BuildKit's own data vectors (see test/fixtures/buildkit-shell/README.md).
const FIXTURES = resolve(import.meta.dirname, '../../fixtures/buildkit-shell');

/** Go's strings.TrimSpace, which BuildKit's test harness applies to each column. */
const trim = (s: string): string => s.replace(/^\p{White_Space}+|\p{White_Space}+$/gu, '');

function failure(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(isKilnError(err, 'DOCKERFILE_INVALID')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected the expansion to fail');
}

describe('BuildKit envVarTest vectors', () => {
  const env = new Map([
    ['PWD', '/home'],
    ['SHELL', 'bash'],
    ['KOREAN', '한국어'],
    ['NULL', ''],
  ]);
  const lines = readFileSync(join(FIXTURES, 'envVarTest'), 'utf8').split('\n');
  const cases = lines.flatMap((line, index) => {
    if (line.startsWith('#') || trim(line) === '') return [];
    const columns = trim(line).split('|');
    expect(columns).toHaveLength(3);
    const [platform = '', source = '', expected = ''] = columns.map(trim);
    // W lines are Windows-only (case-insensitive names); Kiln builds Linux images.
    return platform === 'W' ? [] : [{ line: index + 1, source, expected }];
  });

  it('has the vectors', () => {
    expect(cases.length).toBeGreaterThan(200);
  });

  it.each(cases)('line $line: $source → $expected', ({ source, expected }) => {
    if (expected === 'error') failure(() => expandWord(source, env));
    else expect(expandWord(source, env)).toBe(expected);
  });
});

describe('BuildKit wordsTest vectors', () => {
  const lines = readFileSync(join(FIXTURES, 'wordsTest'), 'utf8').split('\n');
  const env = new Map<string, string>();
  const cases: Array<{ line: number; source: string; expected: string[]; env: Map<string, string> }> = [];
  lines.forEach((line, index) => {
    if (line.startsWith('#') || line === '') return;
    if (line.startsWith('ENV ')) {
      const assignment = line.slice(3).replace(/^ +/, '');
      const eq = assignment.indexOf('=');
      env.set(assignment.slice(0, eq), assignment.slice(eq + 1));
      return;
    }
    const columns = line.split('|');
    expect(columns).toHaveLength(2);
    const [source = '', expected = ''] = columns;
    cases.push({ line: index + 1, source: trim(source), expected: expected.replace(/^ +/, '').split(','), env: new Map(env) });
  });

  it('has the vectors, trailing spaces included', () => {
    expect(cases.length).toBeGreaterThan(20);
    expect(cases.some((c) => c.expected.some((w) => w.endsWith('   ')))).toBe(true);
  });

  it.each(cases)('line $line: $source', ({ source, expected, env: lineEnv }) => {
    let words: string[];
    try {
      words = expandWords(source, lineEnv);
    } catch (err) {
      expect(isKilnError(err, 'DOCKERFILE_INVALID')).toBe(true);
      words = ['error'];
    }
    expect(words).toEqual(expected);
  });
});

describe('required variables (${X?msg}, ${X:?msg})', () => {
  const set = new Map([['VAR', 'plain'], ['ARG', 'x']]);
  const empty = new Map([['VAR', ''], ['ARG', 'x']]);
  const unset = new Map([['ARG', 'x']]);

  it('${VAR:?msg} refuses empty and unset, with the expanded message', () => {
    expect(expandWord('${VAR:?message here$ARG}', set)).toBe('plain');
    expect(failure(() => expandWord('${VAR:?message here$ARG}', empty))).toContain('VAR: message herex');
    expect(failure(() => expandWord('${VAR:?message here$ARG}', unset))).toContain('VAR: message herex');
  });

  it('${VAR?msg} refuses only unset', () => {
    expect(expandWord('${VAR?message here$ARG}', set)).toBe('plain');
    expect(expandWord('${VAR?message here$ARG}', empty)).toBe('');
    expect(failure(() => expandWord('${VAR?message here$ARG}', unset))).toContain('VAR: message herex');
  });

  it('has default messages', () => {
    expect(failure(() => expandWord('${X?}', new Map()))).toContain('X: is not allowed to be unset');
    expect(failure(() => expandWord('${X:?}', new Map([['X', '']])))).toContain('X: is not allowed to be empty');
  });
});

interface TrackedCase {
  input: string;
  env: Record<string, string>;
  expected?: string;
  used?: string[];
  unmatched?: string[];
}

// Rewritten from BuildKit's TestProcessWithMatches: value plus which names were found / missing.
const tracked: TrackedCase[] = [
  { input: 'x', env: { DUMMY: 'dummy' }, expected: 'x' },
  { input: 'x ${UNUSED}', env: { DUMMY: 'dummy' }, expected: 'x ', unmatched: ['UNUSED'] },
  { input: 'x ${FOO}', env: { FOO: 'y' }, expected: 'x y', used: ['FOO'] },
  { input: '${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx  ccc', used: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx bbb ccc', used: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:-}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx', used: ['FOO'] },
  { input: '${FOO:-}', env: {}, expected: '', unmatched: ['FOO'] },
  { input: '${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'aaa bbb ', used: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'aaa  ', used: ['FOO', 'BAR'], unmatched: ['BAZ'] },
  { input: '${FOO?aaa}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx', used: ['FOO'] },
  { input: '${BAR?bbb}', env: { FOO: 'xxx', BAR: '' }, expected: '', used: ['BAR'] },
  { input: '${BAZ?ccc}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${FOO:?aaa}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx', used: ['FOO'] },
  { input: '${BAR:?bbb}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${BAZ:?ccc}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${BAZ:?}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${FOO=aaa}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${FOO=:aaa}', env: { FOO: 'xxx', BAR: '' } },
  { input: '${FOO=}', env: {} },
  // Pattern metacharacters are literal; } must be escaped so it does not close the ${}.
  { input: '${FOO#()[]{\\}^$.\\*\\?|\\\\}', env: { FOO: '()[]{}^$.*?|\\x' }, expected: 'x', used: ['FOO'] },
  { input: '${FOO%%\\**}', env: { FOO: 'xx**' }, expected: 'xx', used: ['FOO'] },
  { input: '${FOO#*x*y}', env: { FOO: 'xxyy' }, expected: 'y', used: ['FOO'] },
  { input: '${FOO#*}', env: { FOO: 'xxyy' }, expected: 'xxyy', used: ['FOO'] },
  { input: '${FOO#$BAR}', env: { FOO: 'xxyy', BAR: 'x' }, expected: 'xyy', used: ['FOO', 'BAR'] },
  { input: '${FOO#$BAR}', env: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy', used: ['FOO', 'BAR'] },
  { input: '${FOO#}', env: { FOO: 'xxyy' }, expected: 'xxyy', used: ['FOO'] },
  { input: '${FOO##*x}', env: { FOO: 'xxyy' }, expected: 'yy', used: ['FOO'] },
  { input: '${FOO##}', env: { FOO: 'xxyy' }, expected: 'xxyy', used: ['FOO'] },
  { input: '${FOO#?\\?}', env: { FOO: '???y' }, expected: '?y', used: ['FOO'] },
  { input: '${ABC:-.}${FOO%x}${ABC:-.}', env: { FOO: 'xxyy' }, expected: '.xxyy.', used: ['FOO'], unmatched: ['ABC'] },
  { input: '${FOO%%\\**\\*}', env: { FOO: 'a***yy*' }, expected: 'a', used: ['FOO'] },
  { input: '${FOO%}', env: { FOO: 'xxyy' }, expected: 'xxyy', used: ['FOO'] },
  { input: '${FOO%%$BAR}', env: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy', used: ['FOO', 'BAR'] },
  { input: '${FOO:#}', env: {} },
  { input: '${FOO:##}', env: {} },
  { input: '${FOO:%}', env: {} },
  { input: '${FOO:%%}', env: {} },
  { input: '${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', env: { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, expected: '/foo.*/*.txt - /foo..*.txt', used: ['FOO', 'NEEDLE'] },
  { input: '${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', env: { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, expected: '/tmp/bar.txt - /bar.txt', used: ['FOO', 'NEEDLE'] },
  {
    input: '${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}',
    env: { FOO: '/a/foo/b/c.txt', NEEDLE: '/?/', REPLACEMENT: '/' },
    expected: '/foo/b/c.txt - /foo/c.txt',
    used: ['FOO', 'NEEDLE', 'REPLACEMENT'],
  },
  { input: '${FOO/$NEEDLE/$REPLACEMENT}', env: { FOO: 'http://google.de', NEEDLE: 'http://', REPLACEMENT: 'https://' }, expected: 'https://google.de', used: ['FOO', 'NEEDLE', 'REPLACEMENT'] },
  // Escaped separators: the \ is dropped from the pattern but kept in the replacement, as BuildKit does.
  { input: '${FOO//\\//\\/}', env: { FOO: '/tmp/foo.txt' }, expected: '\\/tmp\\/foo.txt', used: ['FOO'] },
  { input: '${FOO/$BAR/ww}', env: { FOO: 'xxyy', BAR: '' }, expected: 'wwxxyy', used: ['FOO', 'BAR'] },
  { input: '${FOO//ww}', env: { FOO: 'xxyy' } },
  { input: '${FOO//}', env: { FOO: 'xxyy' } },
  { input: '${FOO///}', env: { FOO: 'xxyy' }, expected: 'xxyy', used: ['FOO'] },
  { input: '${FOO///}', env: {}, expected: '', unmatched: ['FOO'] },
];

describe('expandWordTracked (BuildKit ProcessWordWithMatches)', () => {
  it.each(tracked)('$input', ({ input, env, expected, used = [], unmatched = [] }) => {
    const map = new Map(Object.entries(env));
    if (expected === undefined) {
      failure(() => expandWordTracked(input, map));
      return;
    }
    const result = expandWordTracked(input, map);
    expect(result.value).toBe(expected);
    expect([...result.used].sort()).toEqual([...used].sort());
    expect([...result.unmatched].sort()).toEqual([...unmatched].sort());
  });

  it('expands the release-file naming pattern with and without a variant', () => {
    const release = 'something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz';
    const base = { VERSION: 'v1.2.3', TARGETOS: 'linux' };
    const arm = expandWordTracked(release, new Map(Object.entries({ ...base, TARGETARCH: 'arm', TARGETVARIANT: 'v7' })));
    expect(arm.value).toBe('something-v1.2.3.linux-arm-v7.tar.gz');
    expect([...arm.used].sort()).toEqual(['TARGETARCH', 'TARGETOS', 'TARGETVARIANT', 'VERSION']);
    expect(expandWord(release, new Map(Object.entries({ ...base, TARGETARCH: 'arm64', TARGETVARIANT: '' })))).toBe('something-v1.2.3.linux-arm64.tar.gz');
    const unsetVariant = expandWordTracked(release, new Map(Object.entries({ ...base, TARGETARCH: 'arm64' })));
    expect(unsetVariant.value).toBe('something-v1.2.3.linux-arm64.tar.gz');
    expect([...unsetVariant.unmatched]).toEqual(['TARGETVARIANT']);
  });

  it('accepts a lookup function and reports names looked up inside defaults', () => {
    const seen: string[] = [];
    const lookup = (name: string): string | undefined => {
      seen.push(name);
      return name === 'B' ? 'b' : undefined;
    };
    const result = expandWordTracked('${A:-$B}', lookup);
    expect(result.value).toBe('b');
    expect([...result.used]).toEqual(['B']);
    expect([...result.unmatched]).toEqual(['A']);
    expect(seen).toEqual(['B', 'A']);
  });
});

describe('patterns (#, %, /)', () => {
  const one = (input: string, value: string): string => expandWord(input, new Map([['V', value]]));

  it('removes the shortest or longest prefix and suffix', () => {
    expect(one('${V#*.}', 'a.b.c')).toBe('b.c');
    expect(one('${V##*.}', 'a.b.c')).toBe('c');
    expect(one('${V%.*}', 'a.b.c')).toBe('a.b');
    expect(one('${V%%.*}', 'a.b.c')).toBe('a');
  });

  it('reverses suffix patterns by code point and keeps escapes with their character', () => {
    expect(one('${V%\\*c}', 'ab*c')).toBe('ab');
    expect(one('${V%👽?}', 'x👽🚀')).toBe('x');
    expect(one('${V%🚀}', '🖖🚀')).toBe('🖖');
  });

  it('lets * and ? not cross a newline, as Go regexp . does not', () => {
    expect(one('${V#*}', 'a\nb')).toBe('a\nb');
    expect(one('${V##*}', 'a\nb')).toBe('\nb');
    expect(one('${V//?/-}', 'a\nb')).toBe('-\n-');
  });

  it('replaces like Go ReplaceAllString: no empty match right after a match, $0 is the match', () => {
    expect(one('${V//*/x}', 'abc')).toBe('x');
    expect(one('${V///-}', 'ab')).toBe('-a-b-');
    expect(one('${V//x*/-}', 'axbxc')).toBe('a-');
    expect(one('${V//?/\\$0\\$0}', 'ab')).toBe('\\a\\a\\b\\b');
    expect(one('${V//b/\\${0\\}}', 'abc')).toBe('a\\${0\\}c');
    // The single replacement is inserted literally.
    expect(one('${V/b/\\$0}', 'abc')).toBe('a\\$0c');
  });

  it('rejects escapes other than \\*, \\? and \\\\ in a pattern', () => {
    for (const pattern of ['\\', '\\x', '\\\\\\']) {
      expect(failure(() => expandWord('${X#$P}', new Map([['X', '#a'], ['P', pattern]])))).toContain('invalid escape');
    }
    expect(failure(() => one('${V#\\#}', '#a'))).toContain('invalid pattern (\\#)');
  });
});

describe('escape character and options', () => {
  const env = new Map([['PWD', '/home'], ['X', 'v']]);
  const run = (word: string, options: ExpandOptions): string => expandWord(word, env, options);

  it('uses ` as the escape with # escape=`, leaving \\ literal', () => {
    expect(run('he`$PWD', { escape: '`' })).toBe('he$PWD');
    expect(run('he\\$PWD', { escape: '`' })).toBe('he\\/home');
    expect(run('"a`"b"', { escape: '`' })).toBe('a"b');
    expect(failure(() => run('"a\\"b"', { escape: '`' }))).toContain('unterminated double quote');
  });

  it('rawQuotes keeps quotes, rawEscapes keeps escapes', () => {
    expect(run(`'a b' "c d" $X`, { rawQuotes: true })).toBe(`'a b' "c d" v`);
    expect(run('a\\ b "c\\d" \\$X', { rawEscapes: true })).toBe('a\\ b c\\\\d \\$X');
  });

  it('skipQuotes expands inside quotes and keeps them (heredoc bodies)', () => {
    expect(run(`'$X' "$X"`, { skipQuotes: true })).toBe(`'v' "v"`);
  });

  it('keepUnset leaves unset references as written', () => {
    expect(run('$U ${U} ${U:-d} ${U/a/b} $X', { keepUnset: true })).toBe('$U ${U} ${U:-d} ${U/a/b} v');
  });

  it('drops a leading byte-order mark as Go text/scanner does', () => {
    expect(expandWord('\uFEFFab', env)).toBe('ab');
  });
});

describe('expandWords (BuildKit ProcessWords)', () => {
  it('keeps heredoc markers attached to their word', () => {
    expect(expandWords('cat <<EOF', new Map())).toEqual(['cat', '<<EOF']);
    expect(expandWords('cat << \tEOF x', new Map())).toEqual(['cat', '<< \tEOF', 'x']);
  });

  it('splits on Unicode White_Space but not on a byte-order mark', () => {
    expect(expandWords('a\u00a0b\u2003c', new Map())).toEqual(['a', 'b', 'c']);
    expect(expandWords('a\uFEFFb', new Map())).toEqual(['a\uFEFFb']);
  });

  it('makes no word from empty quotes or empty variables', () => {
    expect(expandWords(`'' "" x`, new Map())).toEqual(['x']);
    expect(expandWords('a$E b', new Map([['E', '']]))).toEqual(['a', 'b']);
  });

  it('keeps the text before a ${…} modifier in its word', () => {
    // BuildKit since dockerfile 1.9 loses "80/" here (a shared buffer is reset by the nested ${}); we do not copy that.
    expect(expandWords('80/${P:-tcp} 90', new Map())).toEqual(['80/tcp', '90']);
    expect(expandWords('x${A#a}y', new Map([['A', 'a b']]))).toEqual(['x', 'by']);
    expect(expandWords('x"${A}"y', new Map([['A', ' a b ']]))).toEqual(['x a b y']);
  });
});

describe('errors', () => {
  it('names the word and gives a hint', () => {
    try {
      expandWord('he${}', new Map());
      expect.unreachable();
    } catch (err) {
      expect(isKilnError(err, 'DOCKERFILE_INVALID')).toBe(true);
      expect((err as Error).message).toBe('cannot expand "he${}": bad substitution');
      expect((err as { hint?: string }).hint).toContain('\\$');
    }
  });

  it.each([
    ['${X', "missing '}'"],
    ['${X:}', "missing '}'"],
    ['${X/a', "missing '/' in ${}"],
    ["'abc", 'unterminated single quote'],
    ['"abc', 'unterminated double quote'],
    ['${X:=a}', 'unsupported modifier (:=)'],
    ['${.}', 'unsupported modifier (.)'],
  ])('%s: %s', (word, message) => {
    expect(failure(() => expandWord(word, new Map([['X', 'v']])))).toContain(message);
  });
});
