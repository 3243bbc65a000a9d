import { KilnError } from '../oci/errors.js';
import { goFormatFloatF, goFormatV, goParseFloat, humanizeParseBytes } from './go-format.js';

// dive v0.13.1's CI gate (runtime/ci/rule.go, evaluator.go; cmd/root.go, cmd/ci.go): three rules read as strings
// from `.dive-ci` (viper: keys case-insensitive, flags given on the command line win over the file, the file over
// the defaults), `disabled` turns one off, and a value that does not parse makes the whole gate "misconfigured".

/** The rule names, as `.dive-ci` and the flags spell them. */
export type RuleKey = 'lowestEfficiency' | 'highestWastedBytes' | 'highestUserWastedPercent';

/** Rules in dive's report order (sort.Strings of the keys). */
export const RULE_KEYS: readonly RuleKey[] = ['highestUserWastedPercent', 'highestWastedBytes', 'lowestEfficiency'];

/** dive's defaults (the flags' default values). */
export const RULE_DEFAULTS: Readonly<Record<RuleKey, string>> = {
  lowestEfficiency: '0.9',
  highestWastedBytes: 'disabled',
  highestUserWastedPercent: '0.1',
};

/** Outcome of one rule, with dive's status names. */
export type RuleStatus = 'PASS' | 'FAIL' | 'SKIP' | 'MISCONFIGURED' | 'CONFIGURED';

/** One rule's configured value, status and dive's message. */
export interface RuleResult {
  key: RuleKey;
  value: string;
  status: RuleStatus;
  message: string;
}

/** The numbers the rules look at. */
export interface GateNumbers {
  efficiency: number;
  wastedBytes: number;
  userWastedPercent: number;
}

/** The gate's verdict. */
export interface CiEvaluation {
  pass: boolean;
  misconfigured: boolean;
  rules: RuleResult[];
  tally: { pass: number; fail: number; warn: number; skip: number; total: number };
}

/** Options of `ciRuleValues`. */
export interface CiRuleSources {
  /** The parsed `.dive-ci` document (undefined/null for none or an empty file). */
  file?: unknown;
  /** Name of the file, for errors. */
  fileName?: string;
  /** Values given as command-line flags; they override the file. */
  flags?: Partial<Record<RuleKey, string | undefined>>;
}

/** The rules' values as dive's viper reads them: flag, else `rules.<key>` of the file (any case), else the default. */
export function ciRuleValues(sources: CiRuleSources): Record<RuleKey, string> {
  const doc = sources.file;
  if (doc !== undefined && doc !== null && !isMapping(doc)) {
    throw new KilnError('VALIDATION', `${sources.fileName ?? 'CI config'}: must be a YAML mapping with a "rules" section`, {
      hint: 'e.g. rules: { lowestEfficiency: 0.9, highestWastedBytes: disabled, highestUserWastedPercent: 0.1 }',
    });
  }
  const values = { ...RULE_DEFAULTS };
  for (const key of RULE_KEYS) {
    const flag = sources.flags?.[key];
    const fromFile = isMapping(doc) ? fileValue(doc, key) : undefined;
    if (flag !== undefined) values[key] = flag;
    else if (fromFile !== undefined) values[key] = fromFile;
  }
  return values;
}

/** viper's lookup of `rules.<key>`: a flat dotted key first, then the nested one; keys compare case-insensitively. */
function fileValue(doc: Record<string, unknown>, key: RuleKey): string | undefined {
  const flat = entry(doc, `rules.${key}`);
  if (flat !== undefined && flat !== null) return castToString(flat);
  const rules = entry(doc, 'rules');
  const nested = isMapping(rules) ? entry(rules, key) : undefined;
  return nested === undefined || nested === null ? undefined : castToString(nested);
}

function entry(doc: Record<string, unknown>, key: string): unknown {
  const wanted = key.toLowerCase();
  let found: unknown;
  for (const [k, v] of Object.entries(doc)) if (k.toLowerCase() === wanted) found = v;
  return found;
}

/** spf13/cast ToString: strings as is, ints in decimal, floats as FormatFloat 'f' -1, bools; anything else "". */
function castToString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 1e21 ? String(value) : goFormatFloatF(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return String(value);
  return '';
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface Rule {
  validate(value: string): string | undefined;
  evaluate(value: string, numbers: GateNumbers): string | undefined;
}

/** Parses a ratio as dive does, returning its error text instead of throwing. */
function ratio(value: string, key: RuleKey): { value: number } | { error: string } {
  try {
    const parsed = goParseFloat(value);
    if (parsed < 0 || parsed > 1) return { error: `${key} config value is outside allowed range (0-1), given '${value}'` };
    return { value: parsed };
  } catch (err) {
    return { error: `invalid config value ('${value}'): ${(err as Error).message}` };
  }
}

function bytes(value: string): { value: number } | { error: string } {
  try {
    return { value: humanizeParseBytes(value) };
  } catch (err) {
    return { error: `invalid config value ('${value}'): ${(err as Error).message}` };
  }
}

/** dive's three rules; the comparisons are strict, so a value equal to its threshold passes. */
const RULES: Record<RuleKey, Rule> = {
  lowestEfficiency: {
    validate: (v) => errorOf(ratio(v, 'lowestEfficiency')),
    evaluate: (v, n) => {
      const threshold = valueOf(ratio(v, 'lowestEfficiency'));
      return threshold > n.efficiency ? `image efficiency is too low (efficiency=${goFormatV(n.efficiency)} < threshold=${goFormatV(threshold)})` : undefined;
    },
  },
  highestWastedBytes: {
    validate: (v) => errorOf(bytes(v)),
    evaluate: (v, n) => {
      const threshold = valueOf(bytes(v));
      return n.wastedBytes > threshold ? `too many bytes wasted (wasted-bytes=${n.wastedBytes} > threshold=${BigInt(threshold)})` : undefined;
    },
  },
  highestUserWastedPercent: {
    validate: (v) => errorOf(ratio(v, 'highestUserWastedPercent')),
    evaluate: (v, n) => {
      const threshold = valueOf(ratio(v, 'highestUserWastedPercent'));
      return threshold < n.userWastedPercent
        ? `too many bytes wasted, relative to the user bytes added (%-user-wasted-bytes=${goFormatV(n.userWastedPercent)} > threshold=${goFormatV(threshold)})`
        : undefined;
    },
  },
};

function errorOf(r: { value: number } | { error: string }): string | undefined {
  return 'error' in r ? r.error : undefined;
}

function valueOf(r: { value: number } | { error: string }): number {
  return 'value' in r ? r.value : NaN;
}

/** dive's CiEvaluator.Evaluate: validate every enabled rule (any invalid one → misconfigured, fail), then evaluate. */
export function evaluateCiRules(values: Record<RuleKey, string>, numbers: GateNumbers): CiEvaluation {
  const tally = { pass: 0, fail: 0, warn: 0, skip: 0, total: 0 };
  const invalid = RULE_KEYS.map((key) => (values[key] === 'disabled' ? undefined : RULES[key].validate(values[key])));
  if (invalid.some((e) => e !== undefined)) {
    const rules = RULE_KEYS.map((key, i): RuleResult => {
      const error = invalid[i];
      if (error !== undefined) return { key, value: values[key], status: 'MISCONFIGURED', message: error };
      return { key, value: values[key], status: 'CONFIGURED', message: values[key] === 'disabled' ? 'rule disabled' : 'test' };
    });
    return { pass: false, misconfigured: true, rules, tally };
  }
  const rules = RULE_KEYS.map((key): RuleResult => {
    const value = values[key];
    if (value === 'disabled') return { key, value, status: 'SKIP', message: 'rule disabled' };
    const failure = RULES[key].evaluate(value, numbers);
    return failure === undefined ? { key, value, status: 'PASS', message: '' } : { key, value, status: 'FAIL', message: failure };
  });
  for (const r of rules) {
    if (r.status === 'PASS') tally.pass++;
    else if (r.status === 'FAIL') tally.fail++;
    else if (r.status === 'SKIP') tally.skip++;
  }
  tally.total = rules.length;
  return { pass: tally.fail === 0, misconfigured: false, rules, tally };
}
