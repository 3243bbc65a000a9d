import type { AstNode, DockerfileAst, DockerfileWarning, LineSegment } from './ast.js';
import { positionIn } from './ast.js';
import { DirectiveScanner, type EscapeChar } from './directives.js';
import { dockerfileError } from './errors.js';
import { heredocsInLine, type Heredoc } from './heredoc.js';
import { ArgumentError, shapeArguments, splitCommand } from './words.js';

// A continuation: the escape character ends the line (trailing blanks allowed) unless it is itself escaped, or
// stands alone on its line.
const CONTINUATION: Record<EscapeChar, RegExp> = {
  '\\': /([^\\])\\[ \t]*$|^\\[ \t]*$/,
  '`': /([^`])`[ \t]*$|^`[ \t]*$/,
};

// Instructions whose shell-form arguments may open heredocs; ONBUILD may wrap one of them.
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);

/**
 * Reads a Dockerfile into instruction nodes the way BuildKit's parser does: parser directives at the top,
 * comments, line continuation with the escape character (comment and blank lines inside a continued
 * instruction are skipped), heredoc bodies, flags, and each instruction's argument shape.
 */
export function parseAst(text: string, options: { file: string; escape?: EscapeChar }): DockerfileAst {
  return new Scanner(text, options.file, options.escape).run();
}

class Scanner {
  private readonly lines: string[];
  private next = 0;
  private readonly directives = new DirectiveScanner();
  private readonly nodes: AstNode[] = [];
  private readonly warnings: DockerfileWarning[] = [];

  constructor(
    text: string,
    private readonly file: string,
    escape?: EscapeChar,
  ) {
    if (escape !== undefined) this.directives.directives.escape = escape;
    // Lines keep their endings: heredoc bodies are copied byte for byte.
    this.lines = text.replace(/^\uFEFF/, '').match(/[^\n]*\n|[^\n]+$/g) ?? [];
  }

  private get escape(): EscapeChar {
    return this.directives.directives.escape;
  }

  run(): DockerfileAst {
    let comments: string[] = [];
    while (this.next < this.lines.length) {
      const raw = this.lines[this.next] ?? '';
      const lineNo = ++this.next;
      const untrimmed = trimNewline(raw);
      const first = untrimmed.replace(/^\p{White_Space}+/u, '');
      const isDirective = this.checkDirective(first, lineNo);
      if (isComment(raw) && !isDirective) {
        const comment = first.slice(1).trim();
        comments = comment === '' ? [] : [...comments, comment];
      }
      let [text, endOfLine] = this.trimContinuation(isComment(first) ? '' : first);
      if (endOfLine && text === '') continue;

      const segments: LineSegment[] = [{ offset: 0, line: lineNo, column: untrimmed.length - first.length + 1 }];
      let emptyContinuation = false;
      while (!endOfLine && this.next < this.lines.length) {
        const more = this.lines[this.next] ?? '';
        const moreNo = ++this.next;
        const body = trimNewline(more);
        this.checkDirective(body, moreNo);
        if (isComment(more)) continue;
        if (body.replace(/^\p{White_Space}+/u, '') === '') {
          emptyContinuation = true;
          continue;
        }
        const [piece, end] = this.trimContinuation(body);
        segments.push({ offset: text.length, line: moreNo, column: 1 });
        text += piece;
        endOfLine = end;
      }
      if (emptyContinuation) {
        this.warnings.push({
          line: this.next,
          message: `empty continuation line in "${text.trim()}": remove the blank line (it will become an error, as in BuildKit)`,
        });
      }
      const node = this.node(text, segments, 0, lineNo, comments);
      node.location.endLine = this.next;
      if (node.child !== undefined) node.child.location.endLine = this.next;
      this.readHeredocs(node, text);
      this.nodes.push(node);
      comments = [];
    }
    if (this.nodes.length === 0) {
      throw dockerfileError(
        { file: this.file, line: Math.max(1, this.next), column: 1 },
        'file with no instructions: a Dockerfile needs at least a FROM instruction',
      );
    }
    return {
      file: this.file,
      directives: this.directives.directives,
      directiveEntries: this.directives.entries,
      nodes: this.nodes,
      warnings: this.warnings,
    };
  }

  private checkDirective(text: string, line: number): boolean {
    const result = this.directives.scan(text, line);
    if (result.kind === 'error') throw dockerfileError({ file: this.file, line, column: 1 }, result.message);
    return result.kind === 'directive';
  }

  /** Removes a trailing continuation character; true when the line ends the instruction. */
  private trimContinuation(line: string): [string, boolean] {
    const re = CONTINUATION[this.escape];
    if (!re.test(line)) return [line, true];
    return [line.replace(re, '$1'), false];
  }

  private node(line: string, segments: LineSegment[], base: number, startLine: number, comments: string[]): AstNode {
    const split = splitCommand(line, this.escape);
    const node: AstNode = {
      command: split.command,
      flags: split.flags,
      args: [],
      json: false,
      heredocs: [],
      original: line,
      location: { file: this.file, line: startLine, column: 1, endLine: startLine },
      segments,
      base,
      comments,
    };
    const start = positionIn(node, line.length - line.replace(/^\p{White_Space}+/u, '').length);
    node.location.line = start.line;
    node.location.column = start.column;
    const lower = split.command.toLowerCase();
    if (lower === 'onbuild') {
      if (split.rest !== '') {
        node.child = this.node(split.rest, segments, base + split.restOffset, startLine, []);
        node.args = [node.child.command, ...node.child.args];
      }
      return node;
    }
    try {
      const shaped = shapeArguments(lower, split.rest, this.escape);
      node.args = shaped.args;
      node.json = shaped.json;
    } catch (err) {
      if (!(err instanceof ArgumentError)) throw err;
      throw dockerfileError(positionIn(node, split.restOffset), err.message);
    }
    return node;
  }

  private readHeredocs(node: AstNode, line: string): void {
    const target = node.child ?? node;
    if (!HEREDOC_INSTRUCTIONS.has(target.command.toLowerCase()) || target.json || !line.includes('<<')) return;
    let words;
    try {
      words = heredocsInLine(line);
    } catch (err) {
      throw dockerfileError(positionIn(node, line.indexOf('<<')), `invalid heredoc: ${(err as Error).message}`);
    }
    const heredocs: Heredoc[] = [];
    for (const word of words) {
      let content = '';
      let terminated = false;
      while (this.next < this.lines.length) {
        const raw = this.lines[this.next] ?? '';
        this.next++;
        let candidate = trimNewline(raw);
        if (word.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === word.name) {
          terminated = true;
          break;
        }
        content += raw;
      }
      if (!terminated) {
        throw dockerfileError(
          positionIn(node, Math.max(0, line.indexOf('<<'))),
          `unterminated heredoc: add a line "${word.name}" to end the here-document`,
        );
      }
      heredocs.push({ ...word, content });
    }
    node.heredocs = heredocs;
    if (node.child !== undefined) node.child.heredocs = heredocs;
    node.location.endLine = this.next;
    if (node.child !== undefined) node.child.location.endLine = this.next;
  }
}

function trimNewline(line: string): string {
  return line.replace(/[\r\n]+$/, '');
}

function isComment(line: string): boolean {
  return line.replace(/^\p{White_Space}+/u, '').startsWith('#');
}
