import { describe, expect, it } from 'vitest';
import { extractFlags, parseJsonArray, parseWords, splitCommand } from '../../../builder/dockerfile/words.js';

describe('parseWords', () => {
  it('splits on unquoted whitespace and keeps quotes and escapes', () => {
    const cases: [string, string[]][] = [
      ['foo', ['foo']],
      ['foo bar', ['foo', 'bar']],
      ['foo\\ bar', ['foo\\ bar']],
      ['foo=bar', ['foo=bar']],
      ["foo bar 'abc xyz'", ['foo', 'bar', "'abc xyz'"]],
      ['foo bar "abc xyz"', ['foo', 'bar', '"abc xyz"']],
      ['àöû', ['àöû']],
      ['föo bàr "âbc xÿz"', ['föo', 'bàr', '"âbc xÿz"']],
      ['a="" b', ['a=""', 'b']],
      ['x=\\"y z', ['x=\\"y', 'z']],
      ['trailing\\', ['trailing']],
    ];
    for (const [input, expected] of cases) expect(parseWords(input, '\\')).toEqual(expected);
  });

  it('uses the chosen escape character', () => {
    expect(parseWords('a` b c\\ d', '`')).toEqual(['a` b', 'c\\', 'd']);
  });
});

describe('extractFlags', () => {
  it('takes leading --words, removing quotes and escapes', () => {
    expect(extractFlags('--a=1 --b="x y" rest of line', '\\')).toEqual({ flags: ['--a=1', '--b=x y'], rest: 'rest of line' });
    expect(extractFlags('--a=\\"q\\" x', '\\')).toEqual({ flags: ['--a="q"'], rest: 'x' });
    expect(extractFlags("--a='' x", '\\')).toEqual({ flags: ['--a='], rest: 'x' });
  });

  it('stops at the first word not starting with -- and at a lone --', () => {
    expect(extractFlags('-a --b', '\\')).toEqual({ flags: [], rest: '-a --b' });
    expect(extractFlags('--a -- --b c', '\\')).toEqual({ flags: ['--a'], rest: ' --b c' });
    expect(extractFlags('--a --', '\\')).toEqual({ flags: ['--a'], rest: '' });
  });
});

describe('splitCommand', () => {
  it('splits name, flags and trimmed rest, with the offset of the rest', () => {
    const line = 'COPY  --from=a   x y  ';
    const split = splitCommand(line, '\\');
    expect(split).toEqual({ command: 'COPY', flags: ['--from=a'], rest: 'x y', restOffset: 17 });
    expect(line.slice(split.restOffset, split.restOffset + 3)).toBe('x y');
    expect(splitCommand('CMD', '\\')).toEqual({ command: 'CMD', flags: [], rest: '', restOffset: 3 });
  });
});

describe('parseJsonArray', () => {
  it('accepts arrays of strings in any spacing', () => {
    const valid: [string, string[]][] = [
      ['[]', []],
      ['[""]', ['']],
      ['["a"]', ['a']],
      ['["a","b"]', ['a', 'b']],
      ['[ "a", "b" ]', ['a', 'b']],
      ['[\t"a",\t"b"\t]', ['a', 'b']],
      ['\t[\t"a",\t"b"\t]\t', ['a', 'b']],
      ['["abc 123", "♥", "☃", "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000"]', ['abc 123', '♥', '☃', '" \\ / \b \f \n \r \t \u0000']],
    ];
    for (const [json, expected] of valid) expect(parseJsonArray(json)).toEqual(expected);
  });

  it('rejects arrays holding anything else', () => {
    for (const json of ['["a",42,"b"]', '["a",123.456,"b"]', '["a",{},"b"]', '["a",{"c": "d"},"b"]', '["a",["c"],"b"]', '["a",true,"b"]', '["a",false,"b"]', '["a",null,"b"]']) {
      expect(() => parseJsonArray(json)).toThrow('arrays must be comprised of strings only');
    }
  });

  it('returns undefined for what is not JSON', () => {
    for (const text of ['echo hi', "['a']", '["a"', '"a"', '[a]']) expect(parseJsonArray(text)).toBeUndefined();
  });
});
