import { errorMessage, isKilnError } from '../oci/errors.js';

/** Global output settings resolved once from flags and environment. */
export interface OutputSettings {
  json: boolean;
  color: boolean;
  /** Live, redrawn progress (stderr is a TTY and CI is not set). */
  live: boolean;
  quiet: boolean;
}

/** True when the environment asks for CI behaviour (`CI` set to anything but false/0/empty). */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** Resolves output settings: NO_COLOR (no-color.org), TTY detection, CI. */
export function outputSettings(opts: { format?: string; quiet?: boolean } = {}): OutputSettings {
  const tty = Boolean(process.stderr.isTTY);
  const noColor = process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '';
  return {
    json: opts.format === 'json',
    color: tty && !noColor && process.env.TERM !== 'dumb',
    live: tty && !isCI() && process.env.TERM !== 'dumb',
    quiet: Boolean(opts.quiet),
  };
}

/** Writes a result line to stdout. */
export function printResult(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Writes a JSON result to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes a message to stderr. */
export function printMessage(text: string): void {
  process.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** A warning on stderr. */
export function printWarning(text: string, settings?: OutputSettings): void {
  const label = settings?.color ? '\x1b[33mwarning:\x1b[0m' : 'warning:';
  printMessage(`kiln: ${label} ${text}`);
}

/** The one-line failure message (plus hint) printed for an error that reached the top. */
export function formatError(err: unknown): string {
  const msg = errorMessage(err).split('\n')[0] ?? 'unknown error';
  const hint = isKilnError(err) && err.hint ? ` (hint: ${err.hint})` : '';
  return `kiln: error: ${msg}${hint}`;
}

/** Human-readable byte size, IEC units as skopeo and docker print them. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}
