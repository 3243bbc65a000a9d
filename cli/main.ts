// Entry point of the CLI. Before the commands' modules load (the bulk of start-up), a `kiln sign` starts
// decrypting its key so that scrypt runs on the thread pool while they do (cli/early-key.ts).
import { startEarlyKeyDecryption } from './early-key.js';

startEarlyKeyDecryption(process.argv.slice(2));
const { runCli } = await import('./program.js');
const status = await runCli(process.argv);
if (status !== undefined) process.exit(status);
