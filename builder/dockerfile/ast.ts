import type { DirectiveEntry, Directives } from './directives.js';
import type { SourcePosition } from './errors.js';
import type { Heredoc } from './heredoc.js';

/** Where an instruction is: its first line and column (1-based) and its last line (heredoc bodies included). */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
  endLine: number;
}

/** Where a piece of a continued instruction came from: text from `offset` on started at `line`:`column`. */
export interface LineSegment {
  offset: number;
  line: number;
  column: number;
}

/** One instruction as parsed, before decoding: the name, the flags and the arguments, all as written. */
export interface AstNode {
  /** The instruction name as written (`run`, `RUN`, `Run`). */
  command: string;
  /** `--flag[=value]` words before the arguments, quotes and escapes removed. */
  flags: string[];
  /**
   * The arguments as the instruction's parser shapes them: one shell-form string, the strings of a JSON array,
   * whitespace-separated words, or key/value/separator triples for ENV and LABEL. Never expanded.
   */
  args: string[];
  /** The arguments were a JSON array (exec form). */
  json: boolean;
  heredocs: Heredoc[];
  /** The instruction as one line: continuation characters, comment and empty continuation lines removed. */
  original: string;
  location: SourceLocation;
  /** Maps offsets in the logical line back to source positions (for errors pointing inside an instruction). */
  segments: LineSegment[];
  /** Where `original` starts in the logical line `segments` describe (non-zero for an ONBUILD trigger). */
  base: number;
  /** The instruction ONBUILD wraps. */
  child?: AstNode;
  /** The comment lines right above the instruction, `#` and surrounding blanks removed. */
  comments: string[];
}

/** A non-fatal finding of the parser. */
export interface DockerfileWarning {
  line: number;
  message: string;
}

/** A parsed Dockerfile before instructions are decoded. */
export interface DockerfileAst {
  file: string;
  directives: Directives;
  directiveEntries: DirectiveEntry[];
  nodes: AstNode[];
  warnings: DockerfileWarning[];
}

/** The source position of offset `index` in `node.original`. */
export function positionIn(node: AstNode, index: number): SourcePosition {
  const offset = node.base + Math.max(0, index);
  let segment = node.segments[0];
  for (const s of node.segments) {
    if (s.offset <= offset) segment = s;
    else break;
  }
  if (segment === undefined) return { file: node.location.file, line: node.location.line, column: node.location.column };
  return { file: node.location.file, line: segment.line, column: segment.column + (offset - segment.offset) };
}

/** The source position of the first occurrence of `needle` in the instruction, or of its start. */
export function positionOf(node: AstNode, needle: string, from = 0): SourcePosition {
  const at = needle === '' ? -1 : node.original.indexOf(needle, from);
  return positionIn(node, at < 0 ? 0 : at);
}
