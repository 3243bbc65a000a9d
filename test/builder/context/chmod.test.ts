import { describe, expect, it } from 'vitest';
import { parseChmod } from '../../../builder/context/chmod.js';

describe('parseChmod', () => {
  it('takes octal up to 07777, also for directories the copy creates', () => {
    const s = parseChmod('755');
    expect(s.octal).toBe(0o755);
    expect(s.apply(0o600, false)).toBe(0o755);
    expect(parseChmod('4755').apply(0o644, false)).toBe(0o4755);
    expect(parseChmod('0').apply(0o644, false)).toBe(0);
  });

  it('rejects out-of-range and non-octal numbers with BuildKit wording', () => {
    expect(() => parseChmod('10000')).toThrow(/invalid chmod parameter: '10000'. it should be octal/);
    expect(() => parseChmod('789')).toThrow(/octal string and between 0 and 07777/);
  });

  it.each([
    ['+x', 0o644, false, 0o755],
    ['u+x', 0o644, false, 0o744],
    ['go-w', 0o666, false, 0o644],
    ['u=rwX,go=rX', 0o600, false, 0o644],
    ['u=rwX,go=rX', 0o700, false, 0o755],
    ['u=rwX,go=rX', 0o600, true, 0o755],
    ['+X', 0o644, false, 0o644],
    ['+X', 0o744, false, 0o755],
    ['g=u', 0o640, false, 0o660],
    ['go=', 0o777, false, 0o700],
    ['a=r', 0o4755, false, 0o444],
    ['u+s', 0o755, false, 0o4755],
    ['o+s', 0o755, false, 0o755],
    ['+t', 0o755, true, 0o1755],
    ['u=rwx,g=rx,o=', 0o000, false, 0o750],
    ['g+w,o-r', 0o644, false, 0o660],
  ] as const)('%s on %s (dir %s) → %s', (text, mode, dir, want) => {
    expect(parseChmod(text).apply(mode, dir).toString(8)).toBe(want.toString(8));
  });

  it.each(['', 'u', 'x+', 'u+q', 'u=rw;', 'ugo', '+rwu'])('rejects "%s" with a clear message', (text) => {
    expect(() => parseChmod(text)).toThrow(/invalid chmod parameter/);
  });
});
