import { positionIn, positionOf, type AstNode } from './ast.js';
import { closestMatch, dockerfileError } from './errors.js';
import { parseFlags } from './flags.js';
import { decodeHealthcheck } from './healthcheck.js';
import { parseHeredocWord, type Heredoc } from './heredoc.js';
import {
  INSTRUCTION_KINDS,
  type AddInstruction,
  type CommandLine,
  type CopyInstruction,
  type CopyLikeFields,
  type Instruction,
  type InstructionBase,
  type KeyValue,
  type RunInstruction,
} from './instructions.js';
import { decodeRunMount, RunMountError, type RunMount } from './run-mount.js';
import { isValidStageName } from './stages.js';

/** Decodes one parsed instruction into its typed form, checking its flags and arguments as BuildKit does. */
export function decodeInstruction(node: AstNode): Instruction {
  const base: InstructionBase = { location: node.location, original: node.original };
  const name = node.command.toUpperCase();
  const noFlags = (): void => void parseFlags(node, name, {});
  switch (name) {
    case 'FROM': {
      const flags = parseFlags(node, name, { platform: 'string' });
      const [image, as, stage] = node.args;
      if (image === undefined || !(node.args.length === 1 || (node.args.length === 3 && as?.toLowerCase() === 'as'))) {
        throw fail(node, 'FROM requires either one or three arguments (FROM <image> [AS <name>])');
      }
      const out: Instruction = { ...base, kind: 'FROM', image };
      if (stage !== undefined) {
        const lower = stage.toLowerCase();
        if (!isValidStageName(lower)) {
          throw dockerfileError(
            positionOf(node, stage, node.original.lastIndexOf(stage)),
            `invalid name for build stage: ${JSON.stringify(stage)}, name can't start with a number or contain symbols (use letters, digits, '-', '_', '.')`,
          );
        }
        out.name = lower;
      }
      if (flags.platform !== undefined) out.platform = flags.platform;
      return out;
    }
    case 'RUN':
      return { ...base, ...decodeRun(node) };
    case 'COPY':
      return { ...base, ...decodeCopy(node) };
    case 'ADD':
      return { ...base, ...decodeAdd(node) };
    case 'ENV':
    case 'LABEL': {
      noFlags();
      const pairs = keyValues(node, name);
      return name === 'ENV' ? { ...base, kind: 'ENV', pairs } : { ...base, kind: 'LABEL', pairs };
    }
    case 'ARG': {
      noFlags();
      if (node.args.length === 0) throw fail(node, 'ARG requires at least one argument (ARG <name>[=<default>])');
      const args = node.args.map((word) => {
        const eq = word.indexOf('=');
        if (eq < 0) return { key: word };
        if (eq === 0) throw fail(node, `ARG names can not be blank (in ${JSON.stringify(word)})`);
        return { key: word.slice(0, eq), value: word.slice(eq + 1) };
      });
      return { ...base, kind: 'ARG', args };
    }
    case 'WORKDIR':
      return { ...base, kind: 'WORKDIR', path: exactlyOne(node, name, '<path>') };
    case 'USER':
      return { ...base, kind: 'USER', user: exactlyOne(node, name, '<user>[:<group>]') };
    case 'STOPSIGNAL':
      return { ...base, kind: 'STOPSIGNAL', signal: exactlyOne(node, name, '<signal>') };
    case 'MAINTAINER':
      return { ...base, kind: 'MAINTAINER', maintainer: exactlyOne(node, name, '<name>') };
    case 'EXPOSE':
      noFlags();
      if (node.args.length === 0) throw fail(node, 'EXPOSE requires at least one argument (EXPOSE <port>[/<protocol>]…)');
      return { ...base, kind: 'EXPOSE', ports: [...node.args].sort() };
    case 'VOLUME': {
      noFlags();
      if (node.args.length === 0) throw fail(node, 'VOLUME requires at least one argument (VOLUME <path>…)');
      const paths = node.args.map((p) => p.trim());
      if (paths.includes('')) throw fail(node, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'VOLUME', paths };
    }
    case 'CMD':
    case 'ENTRYPOINT': {
      noFlags();
      const command = commandLine(node, name);
      return name === 'CMD' ? { ...base, kind: 'CMD', command } : { ...base, kind: 'ENTRYPOINT', command };
    }
    case 'SHELL': {
      noFlags();
      if (!node.json) throw fail(node, 'SHELL requires the arguments to be in JSON form (SHELL ["executable", "parameters"])');
      if (node.args.length === 0) throw fail(node, 'SHELL requires at least one argument (SHELL ["executable", "parameters"])');
      return { ...base, kind: 'SHELL', argv: [...node.args] };
    }
    case 'HEALTHCHECK':
      return { ...base, ...decodeHealthcheck(node) };
    case 'ONBUILD':
      return decodeOnbuild(node, base);
    default: {
      const close = closestMatch(node.command, INSTRUCTION_KINDS);
      const hint = close === undefined ? ` (expected one of ${INSTRUCTION_KINDS.join(', ')})` : `: did you mean ${close}?`;
      throw fail(node, `unknown instruction: ${node.command}${hint}`);
    }
  }
}

function fail(node: AstNode, message: string, index = 0): Error {
  return dockerfileError(positionIn(node, index), message);
}

function exactlyOne(node: AstNode, name: string, usage: string): string {
  const [arg] = node.args;
  if (node.args.length !== 1 || arg === undefined) throw fail(node, `${name} requires exactly one argument (${name} ${usage})`);
  parseFlags(node, name, {});
  return arg;
}

function keyValues(node: AstNode, name: string): KeyValue[] {
  const args = node.args;
  if (args.length === 0) throw fail(node, `${name} requires at least one argument (${name} <key>=<value>…)`);
  if (args.length % 3 !== 0) throw fail(node, `Bad input to ${name}, too many arguments`);
  const out: KeyValue[] = [];
  for (let i = 0; i < args.length; i += 3) {
    const key = args[i] ?? '';
    if (key === '') throw fail(node, `${name} names can not be blank (write ${name} <key>=<value>)`);
    out.push({ key, value: args[i + 1] ?? '', legacy: args[i + 2] === '' });
  }
  return out;
}

function commandLine(node: AstNode, name: string): CommandLine {
  if (node.json) return { form: 'exec', argv: [...node.args] };
  if (node.args.length === 0) {
    throw fail(node, `${name} requires at least one argument (${name} <command> or ${name} ["executable", "arg"…])`);
  }
  return { form: 'shell', text: node.args.join(' ') };
}

function decodeRun(node: AstNode): Omit<RunInstruction, keyof InstructionBase> {
  const flags = parseFlags(node, 'RUN', { mount: 'strings', network: 'string', security: 'string', device: 'strings' });
  if (flags.security !== undefined && flags.security !== 'sandbox') {
    const at = positionOf(node, '--security');
    if (flags.security !== 'insecure') {
      throw dockerfileError(at, `security ${JSON.stringify(flags.security)} is not valid (expected sandbox or insecure)`);
    }
    throw dockerfileError(at, 'RUN --security=insecure is not supported: kiln runs every step unprivileged (remove the flag)');
  }
  if (flags.device !== undefined) {
    throw dockerfileError(positionOf(node, '--device'), 'RUN --device is not supported by kiln (remove the flag)');
  }
  const network = flags.network;
  if (network !== undefined && network !== 'default' && network !== 'none' && network !== 'host') {
    const message = `invalid network mode ${JSON.stringify(network)} (expected default, none or host)`;
    throw dockerfileError(positionOf(node, '--network'), message);
  }
  const mounts: RunMount[] = [];
  let searchFrom = 0;
  for (const spec of flags.mount ?? []) {
    const index = node.original.indexOf('--mount', searchFrom);
    searchFrom = index < 0 ? searchFrom : index + 1;
    try {
      mounts.push(decodeRunMount(spec));
    } catch (err) {
      if (!(err instanceof RunMountError)) throw err;
      throw dockerfileError(positionIn(node, Math.max(0, index)), `invalid --mount=${spec}: ${err.message}`);
    }
  }
  if (node.args.length === 0) {
    throw fail(node, 'RUN requires at least one argument (RUN <command> or RUN ["executable", "arg"…])');
  }
  const command: CommandLine = node.json ? { form: 'exec', argv: [...node.args] } : { form: 'shell', text: node.args.join(' ') };
  const out: Omit<RunInstruction, keyof InstructionBase> = { kind: 'RUN', command, heredocs: node.heredocs, mounts };
  if (network !== undefined) out.network = network;
  return out;
}

function decodeCopy(node: AstNode): Omit<CopyInstruction, keyof InstructionBase> {
  const flags = parseFlags(node, 'COPY', {
    from: 'string',
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    parents: 'bool',
    exclude: 'strings',
  });
  const out: Omit<CopyInstruction, keyof InstructionBase> = {
    kind: 'COPY',
    ...sourcesAndDest(node, 'COPY', flags),
    parents: flags.parents ?? false,
  };
  if (flags.from !== undefined) {
    // BuildKit resolves --from before any variable is known and refuses variables rather than ignoring them.
    if (/\$[{\w@*#?$!-]/.test(flags.from)) {
      throw dockerfileError(
        positionOf(node, '--from'),
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
      );
    }
    out.from = flags.from;
  }
  return out;
}

function decodeAdd(node: AstNode): Omit<AddInstruction, keyof InstructionBase> {
  const flags = parseFlags(node, 'ADD', {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    exclude: 'strings',
    checksum: 'string',
    unpack: 'bool',
    'keep-git-dir': 'bool',
  });
  if (flags['keep-git-dir'] !== undefined) {
    const message = 'ADD --keep-git-dir is not supported: kiln does not fetch git sources (remove the flag)';
    throw dockerfileError(positionOf(node, '--keep-git-dir'), message);
  }
  const out: Omit<AddInstruction, keyof InstructionBase> = { kind: 'ADD', ...sourcesAndDest(node, 'ADD', flags) };
  if (flags.checksum !== undefined) out.checksum = flags.checksum;
  if (flags.unpack !== undefined) out.unpack = flags.unpack;
  return out;
}

function sourcesAndDest(
  node: AstNode,
  name: string,
  flags: { chown?: string; chmod?: string; link?: boolean; exclude?: string[] },
): CopyLikeFields {
  const dest = node.args[node.args.length - 1];
  if (node.args.length < 2 || dest === undefined) {
    throw fail(
      node,
      `${name} requires at least two arguments, but only one was provided. Destination could not be determined (${name} <src>… <dest>)`,
    );
  }
  if (!node.json && parseHeredocWord(dest) !== undefined) {
    throw dockerfileError(positionOf(node, dest, node.original.lastIndexOf(dest)), `${name} cannot accept a heredoc as a destination`);
  }
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const src of node.args.slice(0, -1)) {
    const word = node.json ? undefined : parseHeredocWord(src);
    if (word === undefined) {
      sources.push(src);
      continue;
    }
    const body = node.heredocs.find((h) => h.name === word.name);
    heredocs.push({ ...word, content: body?.content ?? '' });
  }
  const out: CopyLikeFields = { sources, heredocs, dest, json: node.json, link: flags.link ?? false, excludes: flags.exclude ?? [] };
  if (flags.chown !== undefined) out.chown = flags.chown;
  if (flags.chmod !== undefined) out.chmod = flags.chmod;
  return out;
}

function decodeOnbuild(node: AstNode, base: InstructionBase): Instruction {
  parseFlags(node, 'ONBUILD', {});
  const child = node.child;
  if (child === undefined) throw fail(node, 'ONBUILD requires at least one argument (ONBUILD <instruction>)');
  const trigger = child.command.toUpperCase();
  if (trigger === 'ONBUILD') throw fail(node, 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw fail(node, `${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const heredoc of node.heredocs) expression += `\n${heredoc.content}${heredoc.name}`;
  return { ...base, kind: 'ONBUILD', trigger: decodeInstruction(child), expression };
}
