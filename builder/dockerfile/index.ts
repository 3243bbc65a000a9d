// The Dockerfile front end: parse, decode, split into stages. Variable expansion lives in shell-lex.ts.
export { parseDockerfile, parseInstructions } from './parser.js';
export type { Dockerfile } from './parser.js';
export type { AstNode, DockerfileAst, DockerfileWarning, LineSegment, SourceLocation } from './ast.js';
export { positionIn, positionOf } from './ast.js';
export { parseAst } from './scanner.js';
export { decodeInstruction } from './decode.js';
export type { DirectiveEntry, Directives, EscapeChar } from './directives.js';
export { closestMatch, dockerfileError, type SourcePosition } from './errors.js';
export { chompHeredoc, heredocBody, heredocsInLine, parseHeredocWord, type Heredoc, type HeredocWord } from './heredoc.js';
export * from './instructions.js';
export { decodeRunMount, parseRamSize, RunMountError, type CacheSharing, type RunMount, type RunMountType } from './run-mount.js';
export { findStage, isValidStageName, splitStages, type Stage } from './stages.js';
export { parseGoDuration } from './healthcheck.js';
