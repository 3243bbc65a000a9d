import { Command, CommanderError } from 'commander';
import { registerAnalyze } from './commands/analyze.js';
import { registerBuild } from './commands/build.js';
import { registerCopy } from './commands/copy.js';
import { registerGc } from './commands/gc.js';
import { registerImageStore } from './commands/images.js';
import { registerInspect } from './commands/inspect.js';
import { registerKeygen } from './commands/keygen.js';
import { registerLogin, registerLogout } from './commands/login.js';
import { registerServe } from './commands/serve.js';
import { registerSign } from './commands/sign.js';
import { registerTags } from './commands/tags.js';
import { registerVerify } from './commands/verify.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { formatError, printMessage } from './output.js';

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

registerBuild(program);
registerCopy(program);
registerInspect(program);
registerAnalyze(program);
registerTags(program);
registerLogin(program);
registerLogout(program);
registerServe(program);
registerGc(program);
registerImageStore(program);
registerKeygen(program);
registerSign(program);
registerVerify(program);

// Usage errors exit 2 (STYLE.md); commander would exit 1.
function exitOverrideAll(cmd: Command): void {
  cmd.exitOverride();
  cmd.commands.forEach(exitOverrideAll);
}
exitOverrideAll(program);

/**
 * Runs the command line; returns the exit status when the process must end with it now (errors, --help,
 * --version), undefined when it ends by itself once the command's work is done (a server keeps running).
 */
export async function runCli(argv: string[]): Promise<number | undefined> {
  try {
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
