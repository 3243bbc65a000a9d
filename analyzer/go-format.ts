// Go's number formatting and parsing as dive prints and reads numbers (fmt, strconv, go-humanize v1.0.1),
// so Kiln's CI lines are byte-for-byte dive's: JavaScript rounds ties up where Go rounds half to even, and
// Go's %v switches to exponent form at 1e+06.

/** Go's error text for a number it cannot parse, e.g. `strconv.ParseFloat: parsing "x": invalid syntax`. */
export class GoParseError extends Error {
  constructor(input: string, why: 'invalid syntax' | 'value out of range') {
    super(`strconv.ParseFloat: parsing ${JSON.stringify(input)}: ${why}`);
    this.name = 'GoParseError';
  }
}

/** Shortest round-trip digits of |x| (finite, non-zero) and the decimal exponent of the first digit. */
function shortestDigits(x: number): { digits: string; exp: number } {
  const [mantissa = '', exponent = '0'] = Math.abs(x).toExponential().split('e');
  return { digits: mantissa.replace('.', ''), exp: Number(exponent) };
}

/** Places `digits` (first digit at 10^exp) in plain decimal notation. */
function plainDecimal(digits: string, exp: number): string {
  if (exp < 0) return `0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return digits + '0'.repeat(exp + 1 - digits.length);
  return `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

/** `fmt.Sprintf("%v", x)` for a float64: shortest digits, exponent form below 1e-4 and from 1e+06. */
export function goFormatV(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  if (x === 0) return `${sign}0`;
  const { digits, exp } = shortestDigits(x);
  // strconv 'g' with shortest precision uses %e when exp < -4 || exp >= 6 (eprec = 6).
  if (exp < -4 || exp >= 6) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e}`;
  }
  return sign + plainDecimal(digits, exp);
}

/** `strconv.FormatFloat(x, 'f', -1, 64)`: shortest digits, never an exponent (viper's cast of YAML floats). */
export function goFormatFloatF(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const { digits, exp } = shortestDigits(x);
  return (x < 0 ? '-' : '') + plainDecimal(digits, exp);
}

/** `fmt.Sprintf("%.Nf", x)`: rounds the exact binary value, ties to even, as Go does. */
export function goFormatFixed(x: number, precision: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(view.getUint32(4));
  if (biased !== 0) mantissa |= 1n << 52n;
  const exp2 = (biased === 0 ? 1 : biased) - 1075;
  const scaled = mantissa * 10n ** BigInt(precision);
  let q: bigint;
  if (exp2 >= 0) q = scaled << BigInt(exp2);
  else {
    const den = 1n << BigInt(-exp2);
    q = scaled / den;
    const twice = (scaled % den) * 2n;
    if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
  }
  const text = q.toString().padStart(precision + 1, '0');
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  return precision === 0 ? sign + text : `${sign}${text.slice(0, -precision)}.${text.slice(-precision)}`;
}

const SI_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** go-humanize `Bytes(n)`: SI units, one decimal below 10 (`1.2 kB`, `13 MB`, `9 B`). */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${goFormatFixed(val, val < 10 ? 1 : 0)} ${SI_UNITS[e] ?? '?'}`;
}

/** Unit multipliers of go-humanize `ParseBytes` (lower-cased suffix → bytes). */
const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, ki: 2 ** 10, kib: 2 ** 10,
  m: 1e6, mb: 1e6, mi: 2 ** 20, mib: 2 ** 20,
  g: 1e9, gb: 1e9, gi: 2 ** 30, gib: 2 ** 30,
  t: 1e12, tb: 1e12, ti: 2 ** 40, tib: 2 ** 40,
  p: 1e15, pb: 1e15, pi: 2 ** 50, pib: 2 ** 50,
  e: 1e18, eb: 1e18, ei: 2 ** 60, eib: 2 ** 60,
};

/** go-humanize `ParseBytes`: `20MB` = 20,000,000, `20MiB` = 20·2²⁰, `1,000 kB`; the result is truncated like uint64(f). */
export function humanizeParseBytes(text: string): number {
  const numeric = /^[0-9.,]*/.exec(text)?.[0] ?? '';
  const value = goParseFloat(numeric.replaceAll(',', ''));
  const unit = text.slice(numeric.length).trim().toLowerCase();
  const multiplier = BYTE_UNITS[unit];
  if (multiplier === undefined) throw new Error(`unhandled size name: ${unit}`);
  const bytes = value * multiplier;
  if (bytes >= 2 ** 64) throw new Error(`too large: ${text}`);
  return Math.trunc(bytes);
}

const DECIMAL = /^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const HEX = /^([+-]?)0[xX]((?:[0-9a-fA-F]_?)*[0-9a-fA-F]?)(?:\.([0-9a-fA-F]*))?[pP]([+-]?\d+)$/;

/** `strconv.ParseFloat(s, 64)`: decimal, hex (`0x1p-2`), `inf`/`infinity`/`nan`; throws GoParseError with Go's text. */
export function goParseFloat(text: string): number {
  if (/^[+-]?(?:inf|infinity)$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return NaN;
  let value: number;
  const hex = HEX.exec(text);
  if (hex && `${hex[2] ?? ''}${hex[3] ?? ''}` !== '') {
    const int = (hex[2] ?? '').replaceAll('_', '');
    const frac = hex[3] ?? '';
    const mantissa = Number.parseInt(`${int}${frac}` || '0', 16);
    value = mantissa * 2 ** (Number(hex[4]) - 4 * frac.length) * (hex[1] === '-' ? -1 : 1);
  } else if (DECIMAL.test(text)) {
    value = Number(text.replaceAll('_', ''));
  } else {
    throw new GoParseError(text, 'invalid syntax');
  }
  if (!Number.isFinite(value)) throw new GoParseError(text, 'value out of range');
  return value;
}

/** `strconv.ParseBool`: true/false for Go's spellings, undefined for anything else (dive reads `CI` this way). */
export function goParseBool(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}
