import { describe, expect, it } from 'vitest';
import { goFormatFixed, goFormatFloatF, goFormatV, goParseBool, goParseFloat, humanizeBytes, humanizeParseBytes } from '../../analyzer/go-format.js';
import { goCompareStrings, goPathClean, goTarFileMode } from '../../analyzer/go-path.js';

// Expected strings are what Go 1.19's fmt/strconv and go-humanize v1.0.1 print for the same values.
describe('Go number formatting', () => {
  it('%v switches to exponent form below 1e-4 and from 1e+06', () => {
    expect([0.9, 1e6, 123456, 0.00005, 0.0001, 1e21, 0.123456789, 1, 0, 2.5e-7, 12345678.9].map(goFormatV)).toEqual([
      '0.9', '1e+06', '123456', '5e-05', '0.0001', '1e+21', '0.123456789', '1', '0', '2.5e-07', '1.23456789e+07',
    ]);
    expect([NaN, Infinity, -Infinity].map(goFormatV)).toEqual(['NaN', '+Inf', '-Inf']);
  });

  it('%.Nf rounds exact ties to even, like Go and unlike toFixed', () => {
    expect(goFormatFixed(50.03125, 4)).toBe('50.0312');
    expect(goFormatFixed(12.5, 0)).toBe('12');
    expect(goFormatFixed(13.5, 0)).toBe('14');
    expect(goFormatFixed(0.00005, 4)).toBe('0.0001');
    expect(goFormatFixed(96.77419354838710, 4)).toBe('96.7742');
    expect(goFormatFixed(-50, 4)).toBe('-50.0000');
    expect(goFormatFixed(NaN, 4)).toBe('NaN');
    expect(goFormatFixed(Infinity, 4)).toBe('+Inf');
  });

  it("FormatFloat 'f' -1 never uses an exponent", () => {
    expect([0.9, 1e21, 2e7, 1.5e-7].map(goFormatFloatF)).toEqual(['0.9', '1000000000000000000000', '20000000', '0.00000015']);
  });

  it('humanize.Bytes', () => {
    expect([0, 9, 10, 999, 1000, 1234, 12500, 13500, 999_999, 1_000_000, 20_971_520].map(humanizeBytes)).toEqual([
      '0 B', '9 B', '10 B', '999 B', '1.0 kB', '1.2 kB', '12 kB', '14 kB', '1000 kB', '1.0 MB', '21 MB',
    ]);
  });

  it('humanize.ParseBytes: SI and IEC units, commas, truncation', () => {
    expect(humanizeParseBytes('20MB')).toBe(20_000_000);
    expect(humanizeParseBytes('20Mb')).toBe(20_000_000);
    expect(humanizeParseBytes('20MiB')).toBe(20 * 2 ** 20);
    expect(humanizeParseBytes('20 mib')).toBe(20 * 2 ** 20);
    expect(humanizeParseBytes('1,000')).toBe(1000);
    expect(humanizeParseBytes('1.5')).toBe(1);
    expect(humanizeParseBytes('0.5kB')).toBe(500);
    expect(humanizeParseBytes('42')).toBe(42);
    expect(() => humanizeParseBytes('20XB')).toThrow('unhandled size name: xb');
    expect(() => humanizeParseBytes('-1')).toThrow('strconv.ParseFloat: parsing "": invalid syntax');
    expect(() => humanizeParseBytes('disabled')).toThrow('strconv.ParseFloat: parsing "": invalid syntax');
  });

  it('strconv.ParseFloat syntax and errors', () => {
    expect(goParseFloat('0.9')).toBe(0.9);
    expect(goParseFloat('.5')).toBe(0.5);
    expect(goParseFloat('1e-1')).toBe(0.1);
    expect(goParseFloat('1_0')).toBe(10);
    expect(goParseFloat('0x1p-2')).toBe(0.25);
    expect(goParseFloat('Infinity')).toBe(Infinity);
    expect(goParseFloat('NaN')).toBeNaN();
    expect(() => goParseFloat('abc')).toThrow('strconv.ParseFloat: parsing "abc": invalid syntax');
    expect(() => goParseFloat(' 0.9')).toThrow('invalid syntax');
    expect(() => goParseFloat('1e400')).toThrow('strconv.ParseFloat: parsing "1e400": value out of range');
  });

  it('strconv.ParseBool decides CI mode', () => {
    expect(['1', 't', 'TRUE', 'true', 'True'].map(goParseBool)).toEqual([true, true, true, true, true]);
    expect(['0', 'false', 'F'].map(goParseBool)).toEqual([false, false, false]);
    expect(['yes', '', 'on'].map(goParseBool)).toEqual([undefined, undefined, undefined]);
  });
});

describe('Go path and tar rules', () => {
  it('path.Clean', () => {
    expect(['./etc/', '/a//b/', 'a/./b/../c', '../x', '/../x', '.', '', '/'].map(goPathClean)).toEqual(['etc', '/a/b', 'a/c', '../x', '/x', '.', '.', '/']);
  });

  it('sort.Strings order is code-point order', () => {
    expect(['b', '.wh.a', 'A', 'a', '\u{1F600}', '\uFF5E'].sort(goCompareStrings)).toEqual(['.wh.a', 'A', 'a', 'b', '\uFF5E', '\u{1F600}']);
  });

  it('FileMode bits from mode and typeflag', () => {
    expect(goTarFileMode(0o755, 53)).toBe(2 ** 31 + 0o755);
    expect(goTarFileMode(0o40755, 48)).toBe(2 ** 31 + 0o755);
    expect(goTarFileMode(0o4755, 48)).toBe(2 ** 23 + 0o755);
    expect(goTarFileMode(0o777, 50)).toBe(2 ** 27 + 0o777);
    expect(goTarFileMode(0o644, 51)).toBe(2 ** 26 + 2 ** 21 + 0o644);
  });
});
