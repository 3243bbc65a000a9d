import type { SourceLocation } from './ast.js';
import { dockerfileError } from './errors.js';
import type { ArgInstruction, FromInstruction, Instruction } from './instructions.js';

/** One build stage: its FROM and the instructions up to the next FROM. */
export interface Stage {
  /** Position among the stages, from 0 (what `COPY --from=0` names). */
  index: number;
  /** The lower-cased `AS` name, when given. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

// BuildKit's rule for stage names (after lower-casing): a letter, then letters, digits, '-', '_' or '.'.
const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** Whether `name` (already lower-cased) is a valid stage name. */
export function isValidStageName(name: string): boolean {
  return STAGE_NAME.test(name);
}

/**
 * Splits decoded instructions into stages at each FROM. ARGs before the first FROM are the global ARGs; any
 * other instruction there is an error, as is a stage name used twice.
 */
export function splitStages(instructions: Instruction[]): { globalArgs: ArgInstruction[]; stages: Stage[] } {
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const named = new Map<string, SourceLocation>();
  for (const instruction of instructions) {
    if (instruction.kind === 'FROM') {
      const stage: Stage = { index: stages.length, from: instruction, instructions: [] };
      if (instruction.name !== undefined) {
        const earlier = named.get(instruction.name);
        if (earlier !== undefined) {
          throw dockerfileError(
            instruction.location,
            `duplicate stage name ${JSON.stringify(instruction.name)} (already used at line ${earlier.line}): give each stage its own name`,
          );
        }
        named.set(instruction.name, instruction.location);
        stage.name = instruction.name;
      }
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current !== undefined) {
      current.instructions.push(instruction);
    } else if (instruction.kind === 'ARG') {
      globalArgs.push(instruction);
    } else {
      throw dockerfileError(
        instruction.location,
        `${instruction.kind} before the first FROM: only ARG may come before FROM (start a stage with FROM <image>)`,
      );
    }
  }
  if (stages.length === 0) {
    const at = instructions[0]?.location ?? { file: 'Dockerfile', line: 1, column: 1 };
    throw dockerfileError(at, 'no build stage: the Dockerfile needs a FROM instruction');
  }
  return { globalArgs, stages };
}

/**
 * The stage `ref` names: a stage name (case-insensitive) or a decimal index, as `FROM ref` and `COPY --from=ref`
 * use them. With `before`, only stages with a smaller index count (a stage may use only earlier ones).
 */
export function findStage(stages: readonly Stage[], ref: string, before = Infinity): Stage | undefined {
  const limit = Math.min(before, stages.length);
  if (/^[-+]?\d+$/.test(ref)) {
    const index = Number(ref);
    return index >= 0 && index < limit ? stages[index] : undefined;
  }
  const name = ref.toLowerCase();
  return stages.slice(0, limit).find((s) => s.name === name);
}
