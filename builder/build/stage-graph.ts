import { KilnError } from '../../oci/errors.js';
import type { Dockerfile, Stage } from '../dockerfile/parser.js';
import { decodeRunMount } from '../dockerfile/run-mount.js';
import { expandWord } from '../dockerfile/shell-lex.js';

/** The stage a `--from`/FROM word names, when it names one before `before` (by name or index). */
export function stageRef(df: Dockerfile, word: string, before: number): Stage | undefined {
  const lower = word.toLowerCase();
  const byName = df.stages.find((s) => s.name === lower && s.index < before);
  if (byName) return byName;
  if (/^\d+$/.test(word)) {
    const i = Number(word);
    const s = df.stages[i];
    if (s && i < before) return s;
  }
  return undefined;
}

/** The stage `--target` names, or the last one; an unknown name lists the stages there are. */
export function targetStage(df: Dockerfile, target: string | undefined): Stage {
  if (target === undefined) return df.stages[df.stages.length - 1]!;
  const found = df.stages.find((s) => s.name === target.toLowerCase());
  if (!found) {
    const names = df.stages.map((s) => s.name).filter((n): n is string => n !== undefined);
    // Not a usage error (exit 2): the flag is well-formed, the Dockerfile lacks the stage (BuildKit fails the build).
    throw new KilnError('NOT_FOUND', `--target ${target}: no stage of that name in ${df.file}${names.length ? ` (stages: ${names.join(', ')})` : ' (its stages have no names)'}`);
  }
  return found;
}

/** The FROM word of a stage, expanded with the global ARGs. */
export function fromImage(stage: Stage, globals: ReadonlyMap<string, string>, escape: '\\' | '`'): string {
  return expandWord(stage.from.image, globals, { escape });
}

/** Indices of the stages `stage` reads from: its FROM, COPY --from and RUN --mount from=. */
export function stageDependencies(df: Dockerfile, stage: Stage, globals: ReadonlyMap<string, string>, escape: '\\' | '`'): number[] {
  const deps = new Set<number>();
  const add = (word: string | undefined): void => {
    if (word === undefined) return;
    const s = stageRef(df, word, stage.index);
    if (s) deps.add(s.index);
  };
  add(fromImage(stage, globals, escape));
  for (const ins of stage.instructions) {
    if (ins.kind === 'COPY') add(ins.from === undefined ? undefined : expandWord(ins.from, globals, { escape }));
    if (ins.kind === 'RUN') {
      for (const m of ins.mounts) {
        const from = m.hasVariables ? safeDecode(m.spec, globals, escape) : m.from;
        add(from);
      }
    }
  }
  return [...deps];
}

function safeDecode(spec: string, globals: ReadonlyMap<string, string>, escape: '\\' | '`'): string | undefined {
  try {
    return decodeRunMount(spec, (w) => expandWord(w, globals, { escape })).from;
  } catch {
    return undefined;
  }
}

/** The stages the target needs, dependencies first. */
export function neededStages(df: Dockerfile, target: Stage, globals: ReadonlyMap<string, string>, escape: '\\' | '`'): Stage[] {
  const seen = new Set<number>();
  const order: Stage[] = [];
  const visit = (s: Stage): void => {
    if (seen.has(s.index)) return;
    seen.add(s.index);
    for (const d of stageDependencies(df, s, globals, escape)) visit(df.stages[d]!);
    order.push(s);
  };
  visit(target);
  return order;
}
