import type { DockerfileWarning } from './ast.js';
import { decodeInstruction } from './decode.js';
import type { DirectiveEntry, Directives, EscapeChar } from './directives.js';
import type { ArgInstruction, Instruction } from './instructions.js';
import { parseAst } from './scanner.js';
import { splitStages, type Stage } from './stages.js';

export type { SourceLocation, DockerfileWarning } from './ast.js';
export type { Directives, EscapeChar } from './directives.js';
export type { Heredoc } from './heredoc.js';
export type * from './instructions.js';
export type { RunMount, RunMountType, CacheSharing } from './run-mount.js';
export type { Stage } from './stages.js';

/** A parsed and decoded Dockerfile: its directives, the global ARGs before the first FROM, and its stages. */
export interface Dockerfile {
  /** The name errors and locations use (e.g. `Dockerfile` or the `-f` path). */
  file: string;
  directives: Directives;
  /** Every directive as written, with its line. */
  directiveEntries: DirectiveEntry[];
  globalArgs: ArgInstruction[];
  stages: Stage[];
  /** Non-fatal findings: empty continuation lines, deprecated MAINTAINER. */
  warnings: DockerfileWarning[];
}

/**
 * Parses a Dockerfile as BuildKit's frontend does and decodes every instruction. Throws KilnError
 * DOCKERFILE_INVALID (`file:line:col: …`) on the first problem. Values stay unexpanded.
 */
export function parseDockerfile(text: string, options: { file: string }): Dockerfile {
  const ast = parseAst(text, { file: options.file });
  const instructions = ast.nodes.map(decodeInstruction);
  const { globalArgs, stages } = splitStages(instructions);
  const warnings = [...ast.warnings];
  for (const instruction of instructions) {
    if (instruction.kind === 'MAINTAINER') {
      warnings.push({
        line: instruction.location.line,
        message: 'MAINTAINER is deprecated: use LABEL org.opencontainers.image.authors=<name> instead',
      });
    }
  }
  return { file: options.file, directives: ast.directives, directiveEntries: ast.directiveEntries, globalArgs, stages, warnings };
}

/**
 * Parses instructions without stages, e.g. the ONBUILD triggers of a base image (its config's `OnBuild`
 * joined by newlines), with the default escape unless told otherwise.
 */
export function parseInstructions(text: string, options: { file: string; escape?: EscapeChar }): Instruction[] {
  return parseAst(text, options).nodes.map(decodeInstruction);
}
