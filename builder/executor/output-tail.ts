import { StringDecoder } from 'node:string_decoder';

/** The last lines of a stream of output, in bounded memory whatever the command prints. */
export class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';
  /** Keeps a UTF-8 character split across chunks whole. */
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly keep = 20,
    /** A line longer than this is cut: the tail is for an error message, not a log. */
    private readonly maxLine = 2000,
  ) {}

  /** Feeds one chunk (of any size, split anywhere). */
  push(chunk: Buffer): void {
    const parts = (this.partial + this.decoder.write(chunk)).split('\n');
    this.partial = this.cut(parts.pop() ?? '');
    for (const line of parts.slice(-this.keep)) this.lines.push(this.cut(line.replace(/\r$/, '')));
    if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
  }

  /** The kept lines, the unterminated last one included. */
  result(): string[] {
    const all = this.partial === '' ? [...this.lines] : [...this.lines, this.partial.replace(/\r$/, '')];
    return all.slice(-this.keep);
  }

  private cut(line: string): string {
    return line.length > this.maxLine ? `${line.slice(0, this.maxLine)}…` : line;
  }
}
