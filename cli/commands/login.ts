import type { Command } from 'commander';
import { defaultDockerConfigPath, removeCredentials, saveCredentials } from '../../oci/client/auth-file.js';
import { RegistryClient } from '../../oci/client/registry-client.js';
import { KilnError } from '../../oci/errors.js';
import { printMessage } from '../output.js';
import { promptTerminal } from '../prompt.js';

interface LoginFlags {
  username?: string;
  passwordStdin?: boolean;
  authfile?: string;
  insecure?: boolean;
}

/** Registry host from `HOST`, `https://HOST/…` or `docker.io`-style input. */
function hostOf(input: string): string {
  const host = input.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
  if (!host) throw new KilnError('USAGE', `invalid registry "${input}": expected a host such as localhost:5000`);
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Prompts on the terminal; `secret` hides what is typed. */
async function prompt(question: string, secret: boolean): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new KilnError('USAGE', `no terminal to ask for the ${secret ? 'password' : 'username'}`, { hint: 'use -u USER --password-stdin' });
  }
  return promptTerminal(question, secret);
}

/** `kiln login`. */
export function registerLogin(program: Command): void {
  program
    .command('login')
    .argument('<host>', 'registry host, e.g. localhost:5000 or ghcr.io')
    .description('check credentials against a registry and store them in the docker config.json')
    .option('-u, --username <user>', 'user name (prompted for on a TTY when absent)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--authfile <file>', 'file to store credentials in (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .option('--insecure', 'allow plain HTTP for a non-loopback registry')
    .action(async (hostArg: string, flags: LoginFlags) => {
      const host = hostOf(hostArg);
      const username = flags.username ?? (await prompt('Username: ', false));
      const password = flags.passwordStdin ? await readStdin() : await prompt('Password: ', true);
      if (!username || !password) throw new KilnError('USAGE', `login to ${host}: username and password must not be empty`);
      const client = new RegistryClient({ registry: host, insecure: flags.insecure, credentials: { username, password } });
      await client.ping();
      const file = flags.authfile ?? process.env.REGISTRY_AUTH_FILE ?? defaultDockerConfigPath();
      await saveCredentials(file, host, username, password);
      printMessage(`Login Succeeded (credentials for ${host} stored in ${file})`);
    });
}

/** `kiln logout`. */
export function registerLogout(program: Command): void {
  program
    .command('logout')
    .argument('<host>', 'registry host')
    .description('remove stored credentials for a registry')
    .option('--authfile <file>', 'credentials file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .action(async (hostArg: string, flags: { authfile?: string }) => {
      const host = hostOf(hostArg);
      const file = flags.authfile ?? process.env.REGISTRY_AUTH_FILE ?? defaultDockerConfigPath();
      if (!(await removeCredentials(file, host))) {
        throw new KilnError('NOT_FOUND', `not logged in to ${host} (no entry in ${file})`);
      }
      printMessage(`Removed login credentials for ${host} from ${file}`);
    });
}
