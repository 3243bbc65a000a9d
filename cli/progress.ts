import type { CopyEvent } from '../oci/copy.js';
import { formatBytes, type OutputSettings } from './output.js';

/** Renders copy progress on stderr: a live per-blob display on a TTY, one plain line per blob otherwise. */
export interface ProgressRenderer {
  onEvent(event: CopyEvent): void;
  /** Stops redrawing and leaves the final state on screen. */
  finish(): void;
}

const short = (digest: string): string => digest.replace(/^sha(256|512):/, '').slice(0, 12);

/** Picks the renderer for the settings: silent, plain lines, or live. */
export function createProgress(settings: OutputSettings, stream: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  if (settings.quiet) return { onEvent: () => undefined, finish: () => undefined };
  return settings.live ? new LiveProgress(stream) : new PlainProgress(stream);
}

class PlainProgress implements ProgressRenderer {
  constructor(private readonly out: NodeJS.WritableStream) {}

  onEvent(e: CopyEvent): void {
    if (e.type === 'blob-done') {
      const verb = { copied: 'copied ', skipped: 'exists ', mounted: 'mounted' }[e.action];
      this.out.write(`${verb} blob ${e.digest} (${formatBytes(e.size)})\n`);
    } else if (e.type === 'manifest') {
      this.out.write(`wrote   manifest ${e.digest}${e.tag ? ` as ${e.tag}` : ''}\n`);
    }
  }

  finish(): void {}
}

interface Row {
  label: string;
  bytes: number;
  size: number;
  state: string;
}

class LiveProgress implements ProgressRenderer {
  private readonly rows = new Map<string, Row>();
  private drawn = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  onEvent(e: CopyEvent): void {
    if (e.type === 'blob-start') this.rows.set(e.digest, { label: short(e.digest), bytes: 0, size: e.size, state: 'copying' });
    else if (e.type === 'blob-progress') {
      const row = this.rows.get(e.digest);
      if (row) row.bytes = e.bytes;
    } else if (e.type === 'blob-done') {
      const row = this.rows.get(e.digest) ?? { label: short(e.digest), bytes: 0, size: e.size, state: '' };
      row.state = e.action === 'copied' ? 'done' : e.action === 'skipped' ? 'exists' : 'mounted';
      row.bytes = e.size;
      this.rows.set(e.digest, row);
    } else {
      this.rows.set(e.digest, { label: `manifest ${short(e.digest)}`, bytes: 0, size: 0, state: e.tag ? `tagged ${e.tag}` : 'written' });
    }
  }

  private draw(): void {
    const width = Math.max(20, (this.out.columns ?? 80) - 1);
    let text = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const row of this.rows.values()) {
      const pct = row.size > 0 ? Math.floor((row.bytes / row.size) * 100) : 100;
      const bar = row.size > 0 ? `[${'#'.repeat(Math.floor(pct / 5)).padEnd(20, '.')}] ${formatBytes(row.bytes)}/${formatBytes(row.size)}` : '';
      const line = `${row.label.padEnd(21)} ${row.state.padEnd(8)} ${bar}`;
      text += `\x1b[2K${line.slice(0, width)}\n`;
    }
    this.drawn = this.rows.size;
    this.out.write(text);
  }

  finish(): void {
    clearInterval(this.timer);
    this.draw();
  }
}
