import type { AnalysisResult } from './analyze.js';
import { goFormatFixed, humanizeBytes } from './go-format.js';
import type { CiEvaluation, GateNumbers, RuleStatus } from './rules.js';
import { preview } from './suggestions.js';

/** Text styling: ANSI only when asked (a TTY without NO_COLOR). */
export interface ReportStyle {
  color?: boolean;
}

const ANSI = { bold: '\x1b[1m', red: '\x1b[31m', green: '\x1b[32m', blue: '\x1b[34m', inverse: '\x1b[7m', reset: '\x1b[0m' };

/** dive's `%5s  %12s  %-s` inefficient-files table (count, humanized size, path). */
function fileTable(files: ReadonlyArray<{ count: number; sizeBytes: number; path: string }>): string[] {
  const row = (a: string, b: string, c: string): string => `${a.padStart(5)}  ${b.padStart(12)}  ${c}`;
  const lines = [row('Count', 'Wasted Space', 'File Path')];
  if (files.length === 0) lines.push('None');
  for (const f of files) lines.push(row(String(f.count), humanizeBytes(f.sizeBytes), f.path));
  return lines;
}

/**
 * dive's CI output, line for line: the three figures, the inefficient files, one line per rule and the result
 * line (or `CI Misconfigured`). `files` is dive's list; a misconfigured gate prints `None`, as dive does.
 */
export function formatCiReport(
  numbers: GateNumbers,
  files: ReadonlyArray<{ count: number; sizeBytes: number; path: string }>,
  evaluation: CiEvaluation,
  style: ReportStyle = {},
): string {
  const paint = (text: string, ...codes: string[]): string => (style.color ? `${codes.join('')}${text}${ANSI.reset}` : text);
  const status = (s: RuleStatus): string => {
    if (s === 'FAIL' || s === 'MISCONFIGURED') return paint(s, ANSI.bold, ANSI.inverse, ANSI.red);
    if (s === 'SKIP') return paint(s, ANSI.blue);
    return s === 'CONFIGURED' ? 'CONFIGURED   ' : s;
  };
  const lines = [
    `  efficiency: ${goFormatFixed(numbers.efficiency * 100, 4)} %`,
    `  wastedBytes: ${numbers.wastedBytes} bytes (${humanizeBytes(numbers.wastedBytes)})`,
    `  userWastedPercent: ${goFormatFixed(numbers.userWastedPercent * 100, 4)} %`,
    paint('Inefficient Files:', ANSI.bold),
    ...fileTable(evaluation.misconfigured ? [] : files),
    paint('Results:', ANSI.bold),
  ];
  for (const rule of evaluation.rules) {
    lines.push(rule.message === '' ? `  ${status(rule.status)}: ${rule.key}` : `  ${status(rule.status)}: ${rule.key}: ${rule.message}`);
  }
  if (evaluation.misconfigured) lines.push(paint('CI Misconfigured', ANSI.red));
  else {
    const t = evaluation.tally;
    const summary = `Result:${t.fail > 0 ? 'FAIL' : 'PASS'} [Total:${t.total}] [Passed:${t.pass}] [Failed:${t.fail}] [Warn:${t.warn}] [Skipped:${t.skip}]`;
    lines.push(paint(summary, evaluation.pass ? ANSI.green : ANSI.red));
  }
  return `${lines.join('\n')}\n`;
}

/** Percentage with four decimals, as dive prints its figures. */
function percent(ratio: number): string {
  return `${goFormatFixed(ratio * 100, 4)} %`;
}

/** Bytes for people: SI units as dive prints them, exact count in parentheses for large values. */
function size(bytes: number): string {
  return humanizeBytes(bytes);
}

/** The readable report: summary, per-layer table, top wasted paths, suggestions and warnings. */
export function formatTextReport(result: AnalysisResult, options: { top?: number } = {}): string {
  const top = options.top ?? 20;
  const { dive, corrected } = result;
  const lines = [
    `Image:      ${result.image.name}`,
    `Digest:     ${result.image.digest} (${result.image.platform})`,
    `Layers:     ${result.layers.length}, ${size(dive.sizeBytes)} (${dive.sizeBytes} bytes of tar entries)`,
    '',
    `dive:       efficiency ${percent(dive.efficiency)}, wasted ${size(dive.wastedBytes)}, user wasted ${percent(dive.userWastedPercent)}`,
    `corrected:  efficiency ${percent(corrected.efficiency)}, wasted ${size(corrected.wastedBytes)}, user wasted ${percent(corrected.userWastedPercent)}`,
    '',
    layerTable(result),
    '',
    `Inefficient files (dive, ${dive.inefficientFiles.length} paths${dive.inefficientFiles.length > top ? `, top ${top}` : ''}):`,
    ...fileTable(dive.inefficientFiles.slice(0, top)),
  ];
  if (result.suggestions.length > 0) {
    lines.push('', 'Suggestions:');
    for (const s of result.suggestions.slice(0, top)) lines.push(`  - ${s.message}`);
  }
  if (result.warnings.length > 0) {
    lines.push('', 'Warnings:');
    for (const w of result.warnings) lines.push(`  - ${w}`);
  }
  return `${lines.join('\n')}\n`;
}

function layerTable(result: AnalysisResult): string {
  const header = ['#', 'Size', 'Added', 'Changed', 'Deleted', 'Wasted', 'Command'];
  const rows = result.layers.map((l) => [
    String(l.index + 1),
    size(l.sizeBytes),
    `${l.added.count} / ${size(l.added.bytes)}`,
    `${l.changed.count} / ${size(l.changed.bytes)}`,
    `${l.deleted.count} / ${size(l.deleted.bytes)}`,
    size(l.wastedBytes),
    preview(l.command, 70),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : i <= 1 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [render(header), ...rows.map(render)].join('\n');
}
