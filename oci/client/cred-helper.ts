import { spawn } from 'node:child_process';
import { KilnError } from '../errors.js';

/** What `docker-credential-NAME get` returns. */
export interface HelperCredential {
  username: string;
  secret: string;
}

const OUTPUT_LIMIT = 64 * 1024;
const HELPER_TIMEOUT_MS = 30_000;

/**
 * Runs `docker-credential-NAME get` with `serverUrl` on stdin (docker-credential-helpers
 * protocol); undefined when the helper has nothing for that server. Neither the helper's output
 * nor the secret ever appears in an error.
 */
export async function runCredentialHelper(name: string, serverUrl: string, configFile: string, env: NodeJS.ProcessEnv): Promise<HelperCredential | undefined> {
  // The name comes from a config file and becomes part of a program name: no paths, no shell.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new KilnError('AUTH_CONFIG', `${configFile}: credential helper name "${name}" is not valid`);
  }
  const program = `docker-credential-${name}`;
  const { code, stdout, stderr, spawnError } = await run(program, serverUrl, env);
  if (spawnError) {
    const missing = spawnError.code === 'ENOENT';
    throw new KilnError('AUTH_CONFIG', missing
      ? `credential helper ${program} (configured in ${configFile}) is not on PATH`
      : `credential helper ${program} could not be started: ${spawnError.code ?? spawnError.message}`, {
      cause: spawnError,
      hint: missing ? `install ${program}, or remove it from ${configFile}` : undefined,
    });
  }
  if (code !== 0) {
    // The helpers' agreed "nothing stored" answer (credentials.ErrCredentialsNotFound).
    if (/credentials not found/i.test(stdout) || /credentials not found/i.test(stderr)) return undefined;
    const why = stderr.split('\n')[0]?.trim().slice(0, 200) ?? '';
    throw new KilnError('AUTH_CONFIG', `credential helper ${program} failed (exit ${code})${why ? `: ${why}` : ''}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new KilnError('AUTH_CONFIG', `credential helper ${program} did not print JSON`);
  }
  const rec = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
  if (typeof rec.Secret !== 'string' || rec.Secret === '') return undefined;
  return { username: typeof rec.Username === 'string' ? rec.Username : '', secret: rec.Secret };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  spawnError?: NodeJS.ErrnoException;
}

function run(program: string, input: string, env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: HELPER_TIMEOUT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += chunk.toString('utf8');
    });
    // A promise settles once: whichever of 'error' (not started) and 'close' (finished) comes first wins.
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr, spawnError: err }));
    // A helper that exits without reading stdin makes the write fail with EPIPE; its exit status tells the story.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
