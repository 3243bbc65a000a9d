import { posix } from 'node:path';
import type { HealthConfig } from '../../oci/config.js';
import { KilnError } from '../../oci/errors.js';
import type { CommandLine, Instruction, KeyValue } from '../dockerfile/instructions.js';
import { expandWord, expandWords } from '../dockerfile/shell-lex.js';
import type { StageState } from './stage-state.js';

/** Instructions that only change the image config (and history), never the filesystem. */
export type MetaInstruction = Exclude<Instruction, { kind: 'FROM' | 'RUN' | 'COPY' | 'ADD' | 'WORKDIR' | 'ARG' }>;

/** What a metadata step needs from the build. */
export interface MetaContext {
  escape: '\\' | '`';
  /** Whether this stage set CMD itself (ENTRYPOINT resets an inherited CMD, as Docker does). */
  cmdSet: { value: boolean };
  /** Where the instruction is, for error messages. */
  where: string;
}

/** Expands one word with the stage's ARGs and ENV. */
export function expand(state: StageState, word: string, ctx: { escape: '\\' | '`'; where: string }): string {
  try {
    return expandWord(word, state.expansionEnv(), { escape: ctx.escape });
  } catch (err) {
    throw new KilnError('DOCKERFILE_INVALID', `${ctx.where}: ${(err as Error).message}`, { cause: err });
  }
}

/** Applies a config-only instruction to the stage; returns the history `created_by`. */
export function applyMeta(state: StageState, ins: MetaInstruction, ctx: MetaContext): string {
  const x = (w: string): string => expand(state, w, ctx);
  const c = state.config;
  switch (ins.kind) {
    case 'ENV': {
      const pairs = expandPairs(ins.pairs, x);
      for (const [k, v] of pairs) state.setEnv(k, v);
      return `ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'LABEL': {
      const pairs = expandPairs(ins.pairs, x);
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of pairs) c.Labels[k] = v;
      return `LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`;
    }
    case 'USER': {
      c.User = x(ins.user);
      return `USER ${c.User}`;
    }
    case 'EXPOSE': {
      const ports = ins.ports.flatMap((p) => expandWords(p, state.expansionEnv(), { escape: ctx.escape })).map((p) => normalisePort(p, ctx.where));
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of ports) c.ExposedPorts[p] = {};
      return `EXPOSE ${ports.join(' ')}`;
    }
    case 'VOLUME': {
      const paths = ins.paths.map(x);
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const p of paths) {
        if (p.trim() === '') throw new KilnError('DOCKERFILE_INVALID', `${ctx.where}: VOLUME specified can not be an empty string`);
        c.Volumes[p] = {};
      }
      return `VOLUME [${paths.join(' ')}]`;
    }
    case 'ENTRYPOINT': {
      c.Entrypoint = commandArgv(state, ins.command);
      if (!ctx.cmdSet.value) delete c.Cmd;
      return `ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`;
    }
    case 'CMD': {
      c.Cmd = commandArgv(state, ins.command);
      ctx.cmdSet.value = true;
      return `CMD ${JSON.stringify(c.Cmd)}`;
    }
    case 'SHELL': {
      c.Shell = [...ins.argv];
      return `SHELL ${JSON.stringify(c.Shell)}`;
    }
    case 'STOPSIGNAL': {
      c.StopSignal = x(ins.signal);
      return `STOPSIGNAL ${c.StopSignal}`;
    }
    case 'HEALTHCHECK': {
      const health: HealthConfig = { Test: [...ins.test] };
      if (ins.interval !== undefined) health.Interval = ins.interval;
      if (ins.timeout !== undefined) health.Timeout = ins.timeout;
      if (ins.startPeriod !== undefined) health.StartPeriod = ins.startPeriod;
      if (ins.startInterval !== undefined) health.StartInterval = ins.startInterval;
      if (ins.retries !== undefined) health.Retries = ins.retries;
      c.Healthcheck = health;
      return `HEALTHCHECK ${JSON.stringify(health)}`;
    }
    case 'ONBUILD': {
      c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
      return `ONBUILD ${ins.expression}`;
    }
    case 'MAINTAINER': {
      state.author = ins.maintainer;
      return `MAINTAINER ${ins.maintainer}`;
    }
  }
}

/** The argv a CMD/ENTRYPOINT/RUN command runs as: exec form as is, shell form through the stage's SHELL. */
export function commandArgv(state: StageState, command: CommandLine): string[] {
  if (command.form === 'exec') return [...command.argv];
  return [...(state.config.Shell ?? ['/bin/sh', '-c']), command.text];
}

/** WORKDIR's new path: relative paths resolve against the current one, as Docker does. */
export function nextWorkdir(current: string | undefined, path: string): string {
  return posix.resolve('/', current || '/', path);
}

function expandPairs(pairs: KeyValue[], x: (w: string) => string): Array<[string, string]> {
  return pairs.map((p) => [x(p.key), x(p.value)]);
}

/** `80` → `80/tcp`, `53/UDP` → `53/udp`, ranges kept; anything else is an error naming the port. */
function normalisePort(port: string, where: string): string {
  const m = /^(\d+(?:-\d+)?)(?:\/(tcp|udp|sctp))?$/i.exec(port);
  if (!m) throw new KilnError('DOCKERFILE_INVALID', `${where}: invalid EXPOSE port "${port}" (expected PORT[/tcp|udp|sctp])`);
  return `${m[1]}/${(m[2] ?? 'tcp').toLowerCase()}`;
}
