import type { SourceLocation } from './ast.js';
import type { Heredoc } from './heredoc.js';
import type { RunMount } from './run-mount.js';

/**
 * The typed instructions of a Dockerfile. Every value is kept UNEXPANDED, exactly as the Dockerfile wrote it
 * (quotes included where the Dockerfile had them): the build expands the words of the instructions listed in
 * `EXPANDED_INSTRUCTIONS` with the stage's variables, word by word, as BuildKit does.
 */

/** What every instruction has: where it is and its text. */
export interface InstructionBase {
  location: SourceLocation;
  /**
   * The instruction as one line (continuations joined, as BuildKit's `Original`), for history `created_by` and
   * error messages; heredoc bodies are not part of it.
   */
  original: string;
}

/** A command in shell form (run by the stage's SHELL) or exec form (a JSON array, run as is). */
export type CommandLine = { form: 'shell'; text: string } | { form: 'exec'; argv: string[] };

/** A key and its value as written; `legacy` for the `ENV key value` form (the value is the rest of the line). */
export interface KeyValue {
  key: string;
  value: string;
  legacy: boolean;
}

/** `FROM [--platform=p] image [AS name]`. */
export interface FromInstruction extends InstructionBase {
  kind: 'FROM';
  /** The base: an image reference, `scratch`, or an earlier stage's name (expanded with the global ARGs). */
  image: string;
  /** The stage name, lower-cased (stage names are case-insensitive). */
  name?: string;
  /** `--platform`, unexpanded (may use `$BUILDPLATFORM`, `$TARGETPLATFORM`). */
  platform?: string;
}

/** `RUN [--mount=…] [--network=…] command`; heredocs (`RUN <<EOF`) carry the script. */
export interface RunInstruction extends InstructionBase {
  kind: 'RUN';
  /** The command; with heredocs it is the shell-form line that opens them (`<<EOF`, `<<EOF bash`). */
  command: CommandLine;
  heredocs: Heredoc[];
  mounts: RunMount[];
  /** `--network`; the build's default when absent. */
  network?: 'default' | 'none' | 'host';
}

/** Fields COPY and ADD share. */
export interface CopyLikeFields {
  /** Source paths (or URLs for ADD), unexpanded; heredoc sources are in `heredocs` instead. */
  sources: string[];
  /** Inline files (`COPY <<EOF /dest`): `name` is the file name, `heredocBody()` its content. */
  heredocs: Heredoc[];
  dest: string;
  /** The arguments were a JSON array (then no heredocs). */
  json: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  /** `--exclude` patterns, in order. */
  excludes: string[];
}

/** `COPY [--from=…] [--chown=…] [--chmod=…] [--link] [--parents] [--exclude=…] src… dest`. */
export interface CopyInstruction extends InstructionBase, CopyLikeFields {
  kind: 'COPY';
  /** Stage name or index, or an image, to copy from instead of the context. */
  from?: string;
  parents: boolean;
}

/** `ADD [--chown] [--chmod] [--link] [--exclude] [--checksum] [--unpack] src… dest`. */
export interface AddInstruction extends InstructionBase, CopyLikeFields {
  kind: 'ADD';
  /** Expected digest of a remote source (`sha256:…`), unexpanded. */
  checksum?: string;
  /** `--unpack`: whether archives are extracted; absent means the default (local archives are). */
  unpack?: boolean;
}

/** `ENV k=v …` or `ENV k v`; values raw (quotes and escapes are processed when expanded). */
export interface EnvInstruction extends InstructionBase {
  kind: 'ENV';
  pairs: KeyValue[];
}

/** `ARG name[=default] …`; `value` absent when no default is given. */
export interface ArgInstruction extends InstructionBase {
  kind: 'ARG';
  args: { key: string; value?: string }[];
}

/** `WORKDIR path`. */
export interface WorkdirInstruction extends InstructionBase {
  kind: 'WORKDIR';
  path: string;
}

/** `USER user[:group]`. */
export interface UserInstruction extends InstructionBase {
  kind: 'USER';
  user: string;
}

/** `LABEL k=v …` (or the legacy `LABEL k v`). */
export interface LabelInstruction extends InstructionBase {
  kind: 'LABEL';
  pairs: KeyValue[];
}

/** `EXPOSE port[/proto] …`, sorted as BuildKit sorts them. */
export interface ExposeInstruction extends InstructionBase {
  kind: 'EXPOSE';
  ports: string[];
}

/** `VOLUME ["/a", "/b"]` or `VOLUME /a /b`. */
export interface VolumeInstruction extends InstructionBase {
  kind: 'VOLUME';
  paths: string[];
}

/** `ENTRYPOINT …`; exec form with an empty argv resets it. */
export interface EntrypointInstruction extends InstructionBase {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

/** `CMD …`. */
export interface CmdInstruction extends InstructionBase {
  kind: 'CMD';
  command: CommandLine;
}

/** `SHELL ["exe", "arg"…]` (JSON form only). */
export interface ShellInstruction extends InstructionBase {
  kind: 'SHELL';
  argv: string[];
}

/** `STOPSIGNAL signal`. */
export interface StopSignalInstruction extends InstructionBase {
  kind: 'STOPSIGNAL';
  signal: string;
}

/** `HEALTHCHECK NONE` or `HEALTHCHECK [options] CMD command`; durations in nanoseconds as the image config has them. */
export interface HealthcheckInstruction extends InstructionBase {
  kind: 'HEALTHCHECK';
  /** The image config's `Test`: `['NONE']`, `['CMD', …argv]` or `['CMD-SHELL', text]`. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

/** `ONBUILD instruction`: stored in the image for builds that use it as their base. */
export interface OnbuildInstruction extends InstructionBase {
  kind: 'ONBUILD';
  /** The wrapped instruction, decoded (so mistakes are reported now rather than in a later build). */
  trigger: Instruction;
  /** What goes into the image config's `OnBuild`: the trigger text, heredoc bodies appended, as BuildKit writes it. */
  expression: string;
}

/** `MAINTAINER name` (deprecated; becomes the image's `author`). */
export interface MaintainerInstruction extends InstructionBase {
  kind: 'MAINTAINER';
  maintainer: string;
}

/** Any Dockerfile instruction. */
export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | WorkdirInstruction
  | UserInstruction
  | LabelInstruction
  | ExposeInstruction
  | VolumeInstruction
  | EntrypointInstruction
  | CmdInstruction
  | ShellInstruction
  | StopSignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

/** The instruction names, upper case. */
export type InstructionKind = Instruction['kind'];

/** Every instruction name, upper case. */
export const INSTRUCTION_KINDS: readonly InstructionKind[] = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
];

/**
 * Instructions whose words BuildKit expands with the stage's variables: keys and values (ENV, LABEL, ARG),
 * sources, dest, --chown, --chmod, --checksum of COPY and ADD, paths, the user, ports, the signal, RUN's
 * mount values (COPY --from never: it is rejected when it uses a variable). FROM's image and --platform
 * expand with the global ARGs only. RUN/CMD/ENTRYPOINT/SHELL commands and HEALTHCHECK are never expanded by
 * the builder (the shell does it); heredoc bodies expand when `expand` is true.
 */
export const EXPANDED_INSTRUCTIONS: ReadonlySet<InstructionKind> = new Set<InstructionKind>([
  'ADD', 'ARG', 'COPY', 'ENV', 'EXPOSE', 'FROM', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);
