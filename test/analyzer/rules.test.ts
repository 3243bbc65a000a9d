import { describe, expect, it } from 'vitest';
import { formatCiReport } from '../../analyzer/report.js';
import { ciRuleValues, evaluateCiRules, RULE_DEFAULTS, type GateNumbers } from '../../analyzer/rules.js';

const numbers = (efficiency: number, wastedBytes: number, userWastedPercent: number): GateNumbers => ({ efficiency, wastedBytes, userWastedPercent });
const statuses = (values: Parameters<typeof evaluateCiRules>[0], n: GateNumbers): Record<string, string> =>
  Object.fromEntries(evaluateCiRules(values, n).rules.map((r) => [r.key, r.status]));

describe('CI rules: dive strict comparisons', () => {
  const all = { lowestEfficiency: '0.9', highestWastedBytes: '20MB', highestUserWastedPercent: '0.1' };

  it('a value equal to its threshold passes', () => {
    expect(statuses(all, numbers(0.9, 20_000_000, 0.1))).toEqual({ lowestEfficiency: 'PASS', highestWastedBytes: 'PASS', highestUserWastedPercent: 'PASS' });
  });

  it('one step past the threshold fails', () => {
    expect(statuses(all, numbers(0.8999999, 20_000_001, 0.1000001))).toEqual({ lowestEfficiency: 'FAIL', highestWastedBytes: 'FAIL', highestUserWastedPercent: 'FAIL' });
  });

  it('20MiB is 20·2^20 bytes', () => {
    const v = { ...all, highestWastedBytes: '20MiB' };
    expect(statuses(v, numbers(1, 20 * 2 ** 20, 0)).highestWastedBytes).toBe('PASS');
    expect(statuses(v, numbers(1, 20 * 2 ** 20 + 1, 0)).highestWastedBytes).toBe('FAIL');
  });

  it('NaN user% (single layer) passes; +Inf (wasted bytes over empty user layers) fails', () => {
    const nan = evaluateCiRules(RULE_DEFAULTS, numbers(1, 0, NaN));
    expect(nan.pass).toBe(true);
    const inf = evaluateCiRules(RULE_DEFAULTS, numbers(1, 10, Infinity));
    expect(inf.pass).toBe(false);
    expect(inf.rules.find((r) => r.key === 'highestUserWastedPercent')?.message).toBe(
      'too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=+Inf > threshold=0.1)',
    );
  });

  it('"disabled" skips a rule; defaults skip highestWastedBytes', () => {
    const e = evaluateCiRules(RULE_DEFAULTS, numbers(0.95, 10 ** 12, 0.05));
    expect(e.rules.map((r) => [r.key, r.status, r.message])).toEqual([
      ['highestUserWastedPercent', 'PASS', ''],
      ['highestWastedBytes', 'SKIP', 'rule disabled'],
      ['lowestEfficiency', 'PASS', ''],
    ]);
    expect(e.tally).toEqual({ pass: 2, fail: 0, warn: 0, skip: 1, total: 3 });
  });

  it('a value that does not parse or is out of range makes the gate misconfigured', () => {
    const e = evaluateCiRules({ lowestEfficiency: '1.5', highestWastedBytes: '20XB', highestUserWastedPercent: 'disabled' }, numbers(1, 0, 0));
    expect(e.misconfigured).toBe(true);
    expect(e.pass).toBe(false);
    expect(e.rules.map((r) => [r.status, r.message])).toEqual([
      ['CONFIGURED', 'rule disabled'],
      ['MISCONFIGURED', "invalid config value ('20XB'): unhandled size name: xb"],
      ['MISCONFIGURED', "lowestEfficiency config value is outside allowed range (0-1), given '1.5'"],
    ]);
    const bad = evaluateCiRules({ ...RULE_DEFAULTS, lowestEfficiency: 'abc' }, numbers(1, 0, 0));
    expect(bad.rules[2]?.message).toBe(`invalid config value ('abc'): strconv.ParseFloat: parsing "abc": invalid syntax`);
  });
});

describe('.dive-ci values', () => {
  it('defaults when there is no file', () => {
    expect(ciRuleValues({})).toEqual(RULE_DEFAULTS);
  });

  it('reads rules.* with keys in any case, numbers as Go prints them, flags winning', () => {
    const file = { Rules: { LOWESTEFFICIENCY: 0.95, highestWastedBytes: 20000000, highestuserwastedpercent: 'disabled' } };
    expect(ciRuleValues({ file })).toEqual({ lowestEfficiency: '0.95', highestWastedBytes: '20000000', highestUserWastedPercent: 'disabled' });
    expect(ciRuleValues({ file, flags: { lowestEfficiency: '0.5', highestWastedBytes: undefined } })).toMatchObject({ lowestEfficiency: '0.5', highestWastedBytes: '20000000' });
  });

  it('a null value keeps the default; a list becomes "" and then fails validation', () => {
    const values = ciRuleValues({ file: { rules: { lowestEfficiency: null, highestUserWastedPercent: [1] } } });
    expect(values.lowestEfficiency).toBe('0.9');
    expect(values.highestUserWastedPercent).toBe('');
    expect(evaluateCiRules(values, numbers(1, 0, 0)).misconfigured).toBe(true);
  });

  it('a document that is not a mapping is an error naming the file', () => {
    expect(() => ciRuleValues({ file: ['rules'], fileName: '.dive-ci' })).toThrow('.dive-ci: must be a YAML mapping');
    expect(() => ciRuleValues({ file: 'rules', fileName: '.dive-ci' })).toThrow('.dive-ci');
  });
});

describe("dive's CI report", () => {
  it('prints the figures, files, rules and result line as dive does', () => {
    const n = numbers(300 / 1300, 1300, 1300 / 300);
    const files = [{ count: 2, sizeBytes: 1300, path: '/app/f' }];
    const text = formatCiReport(n, files, evaluateCiRules(RULE_DEFAULTS, n));
    expect(text).toBe(
      [
        '  efficiency: 23.0769 %',
        '  wastedBytes: 1300 bytes (1.3 kB)',
        '  userWastedPercent: 433.3333 %',
        'Inefficient Files:',
        'Count  Wasted Space  File Path',
        '    2        1.3 kB  /app/f',
        'Results:',
        '  FAIL: highestUserWastedPercent: too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=4.333333333333333 > threshold=0.1)',
        '  SKIP: highestWastedBytes: rule disabled',
        '  FAIL: lowestEfficiency: image efficiency is too low (efficiency=0.23076923076923078 < threshold=0.9)',
        'Result:FAIL [Total:3] [Passed:0] [Failed:2] [Warn:0] [Skipped:1]',
        '',
      ].join('\n'),
    );
  });

  it('a single-layer image: NaN % and a pass', () => {
    const n = numbers(1, 0, NaN);
    const text = formatCiReport(n, [], evaluateCiRules(RULE_DEFAULTS, n));
    expect(text).toContain('  userWastedPercent: NaN %\n');
    expect(text).toContain('Count  Wasted Space  File Path\nNone\n');
    expect(text).toContain('Result:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]');
  });

  it('misconfigured: CONFIGURED lines, no files, "CI Misconfigured"', () => {
    const n = numbers(1, 0, 0);
    const text = formatCiReport(n, [{ count: 2, sizeBytes: 5, path: '/x' }], evaluateCiRules({ ...RULE_DEFAULTS, lowestEfficiency: '2' }, n));
    expect(text.split('\n').slice(3)).toEqual([
      'Inefficient Files:',
      'Count  Wasted Space  File Path',
      'None',
      'Results:',
      '  CONFIGURED   : highestUserWastedPercent: test',
      '  CONFIGURED   : highestWastedBytes: rule disabled',
      "  MISCONFIGURED: lowestEfficiency: lowestEfficiency config value is outside allowed range (0-1), given '2'",
      'CI Misconfigured',
      '',
    ]);
  });
});
