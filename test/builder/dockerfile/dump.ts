import type { AstNode } from '../../../builder/dockerfile/ast.js';
import { parseAst } from '../../../builder/dockerfile/scanner.js';

/** Go's strconv.Quote, so expectations read like BuildKit's parser test results. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (c === 7) out += '\\a';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** One node as an s-expression: `(name ["--flag"] "arg" …)`, ONBUILD's trigger nested. */
export function dumpNode(node: AstNode): string {
  let s = node.command.toLowerCase();
  if (node.flags.length > 0) s += ` [${node.flags.map(goQuote).join(' ')}]`;
  if (node.child !== undefined) return `${s} (${dumpNode(node.child)})`;
  for (const arg of node.args) s += ` ${goQuote(arg)}`;
  return s;
}

/** Every instruction of `text`, one s-expression per line. */
export function dump(text: string): string {
  return parseAst(text, { file: 'Dockerfile' })
    .nodes.map((n) => `(${dumpNode(n)})`)
    .join('\n');
}
