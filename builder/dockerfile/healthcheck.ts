import { positionIn, positionOf, type AstNode } from './ast.js';
import { dockerfileError } from './errors.js';
import { parseFlags } from './flags.js';
import type { HealthcheckInstruction } from './instructions.js';

const NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Nanoseconds in a Go duration string (`1m30s`, `1.5h`, `250ms`, `0`), undefined when it is not one. */
export function parseGoDuration(text: string): number | undefined {
  const match = /^([-+]?)(.*)$/.exec(text);
  const body = match?.[2] ?? '';
  const sign = match?.[1] === '-' ? -1 : 1;
  if (body === '0') return 0;
  if (body === '') return undefined;
  const part = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < body.length) {
    part.lastIndex = pos;
    const m = part.exec(body);
    if (m === null) return undefined;
    total += Number.parseFloat(m[1] ?? '0') * (NS[m[2] ?? ''] ?? 0);
    pos = part.lastIndex;
  }
  return sign * Math.round(total);
}

/** Decodes `HEALTHCHECK NONE` / `HEALTHCHECK [--interval…] CMD command` (never expanded, as in BuildKit). */
export function decodeHealthcheck(node: AstNode): Omit<HealthcheckInstruction, 'location' | 'original'> {
  const [first, ...args] = node.args;
  if (first === undefined) {
    throw dockerfileError(positionIn(node, 0), 'HEALTHCHECK requires at least one argument (NONE or CMD <command>)');
  }
  const type = first.toUpperCase();
  if (type === 'NONE') {
    parseFlags(node, 'HEALTHCHECK NONE', {});
    if (args.length !== 0) throw dockerfileError(positionOf(node, first), 'HEALTHCHECK NONE takes no arguments');
    return { kind: 'HEALTHCHECK', test: ['NONE'] };
  }
  const flags = parseFlags(node, 'HEALTHCHECK', {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  if (type !== 'CMD') {
    throw dockerfileError(positionOf(node, first), `Unknown type ${JSON.stringify(first)} in HEALTHCHECK (try CMD)`);
  }
  if (args.length === 0) throw dockerfileError(positionOf(node, first), 'Missing command after HEALTHCHECK CMD');
  const test = node.json ? ['CMD', ...args] : ['CMD-SHELL', args.join(' ')];
  const out: Omit<HealthcheckInstruction, 'location' | 'original'> = { kind: 'HEALTHCHECK', test };
  const durations = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const;
  for (const [flag, field] of durations) {
    const value = flags[flag];
    if (value === undefined || value === '') continue;
    const ns = parseGoDuration(value);
    const at = positionOf(node, `--${flag}`);
    if (ns === undefined) {
      throw dockerfileError(at, `invalid duration ${JSON.stringify(value)} for --${flag} (expected e.g. 30s, 1m30s, 500ms)`);
    }
    // Zero means "use the default"; anything else must be at least a millisecond.
    if (ns !== 0 && ns < 1e6) throw dockerfileError(at, `Interval --${flag} cannot be less than 1ms`);
    out[field] = ns;
  }
  const retries = flags.retries;
  if (retries !== undefined && retries !== '') {
    const at = positionOf(node, '--retries');
    if (!/^[-+]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31) {
      throw dockerfileError(at, `invalid value ${JSON.stringify(retries)} for --retries (expected a whole number)`);
    }
    const n = Number(retries);
    if (n < 0) throw dockerfileError(at, `--retries cannot be negative (${n})`);
    out.retries = n;
  }
  return out;
}
