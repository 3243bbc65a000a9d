import { Command, CommanderError } from 'commander';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { formatError, printMessage } from './output.js';

type Register = (program: Command) => void;

/**
 * Every command module, in help order, with the command names (and aliases) it registers. Loaded on demand: a run
 * of one named command compiles only that command's code (a copy then skips the builder, signer and server,
 * ~15 ms of start-up); help, an unknown name or no name loads them all.
 */
const COMMANDS: readonly { names: readonly string[]; load: () => Promise<Register[]> }[] = [
  { names: ['build'], load: async () => [(await import('./commands/build.js')).registerBuild] },
  { names: ['copy', 'cp'], load: async () => [(await import('./commands/copy.js')).registerCopy] },
  { names: ['inspect'], load: async () => [(await import('./commands/inspect.js')).registerInspect] },
  { names: ['analyze'], load: async () => [(await import('./commands/analyze.js')).registerAnalyze] },
  { names: ['tags'], load: async () => [(await import('./commands/tags.js')).registerTags] },
  {
    names: ['login', 'logout'],
    load: async () => {
      const m = await import('./commands/login.js');
      return [m.registerLogin, m.registerLogout];
    },
  },
  { names: ['serve'], load: async () => [(await import('./commands/serve.js')).registerServe] },
  { names: ['gc'], load: async () => [(await import('./commands/gc.js')).registerGc] },
  { names: ['images', 'pull', 'push', 'rmi', 'prune'], load: async () => [(await import('./commands/images.js')).registerImageStore] },
  { names: ['keygen', 'generate-key-pair', 'rotate-key'], load: async () => [(await import('./commands/keygen.js')).registerKeygen] },
  { names: ['sign'], load: async () => [(await import('./commands/sign.js')).registerSign] },
  { names: ['verify'], load: async () => [(await import('./commands/verify.js')).registerVerify] },
];

/** The program with the commands `argv` can reach: the one it names, or all of them. */
async function createProgram(argv: string[]): Promise<Command> {
  const program = new Command('kiln')
    .description('Build, store, sign and audit OCI container images')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Results go to stdout, progress and messages to stderr. Exit status: 0 ok, 1 failure, 2 usage.
Environment: REGISTRY_AUTH_FILE, DOCKER_CONFIG, NO_COLOR, CI.`,
    );
  const name = argv[2];
  const named = COMMANDS.find((c) => name !== undefined && c.names.includes(name));
  const modules = await Promise.all((named ? [named] : COMMANDS).map((c) => c.load()));
  for (const register of modules.flat()) register(program);
  exitOverrideAll(program);
  return program;
}

// Usage errors exit 2 (STYLE.md); commander would exit 1.
function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  cmd.commands.forEach(exitOverrideAll);
}

/**
 * Runs the command line; returns the exit status when the process must end with it now (errors, --help,
 * --version), undefined when it ends by itself once the command's work is done (a server keeps running).
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  try {
    const program = await createProgram(argv);
    await program.parseAsync(argv);
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      return ok ? ExitCode.Ok : ExitCode.Usage;
    }
    printMessage(formatError(err));
    if (process.env.KILN_DEBUG && err instanceof Error && err.stack) printMessage(err.stack);
    return exitCodeFor(err);
  }
}
