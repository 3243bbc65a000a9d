import type { BuildEvent } from '../builder/build/options.js';
import { formatBytes, isCI } from './output.js';

/** Renders build events on stderr, BuildKit-style: `#N [stage] STEP`, `#N CACHED`, output lines prefixed `#N`. */
export interface BuildProgress {
  onEvent(event: BuildEvent): void;
  finish(): void;
}

/** `auto` is `tty` on a terminal outside CI, else `plain`; `quiet` prints nothing (errors still do). */
export function createBuildProgress(mode: string, out: NodeJS.WriteStream = process.stderr): BuildProgress {
  if (mode === 'quiet') return { onEvent: () => undefined, finish: () => undefined };
  const tty = mode === 'tty' || (mode === 'auto' && Boolean(out.isTTY) && !isCI());
  return new PlainBuildProgress(out, tty);
}

class PlainBuildProgress implements BuildProgress {
  private readonly partial = new Map<number, string>();
  private pulled = 0;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
  ) {}

  onEvent(e: BuildEvent): void {
    switch (e.type) {
      case 'step':
        this.out.write(`#${e.id} [${e.stage}] ${e.text}${e.cached ? '\n#' + e.id + ' CACHED' : ''}\n`);
        break;
      case 'output': {
        const text = (this.partial.get(e.id) ?? '') + e.chunk.toString('utf8');
        const lines = text.split('\n');
        this.partial.set(e.id, lines.pop() ?? '');
        for (const line of lines) this.out.write(`#${e.id} ${line}\n`);
        break;
      }
      case 'step-done': {
        const rest = this.partial.get(e.id);
        if (rest) this.out.write(`#${e.id} ${rest}\n`);
        this.partial.delete(e.id);
        this.out.write(`#${e.id} DONE ${e.seconds.toFixed(1)}s\n`);
        break;
      }
      case 'pull':
        if (e.event.type === 'blob-done' && e.event.action !== 'skipped') {
          this.pulled += e.event.size;
          this.out.write(`pulled blob ${e.event.digest} (${formatBytes(e.event.size)})\n`);
        }
        break;
      case 'warning':
        this.out.write(`${this.tty ? '\x1b[33mwarning:\x1b[0m' : 'warning:'} ${e.message}\n`);
        break;
    }
  }

  finish(): void {
    for (const [id, rest] of this.partial) if (rest) this.out.write(`#${id} ${rest}\n`);
    this.partial.clear();
  }
}
