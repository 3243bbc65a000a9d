import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/kiln.js', import.meta.url));

export interface KilnRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** The child's environment; default this process's. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: string;
}

/** Runs `binary` with `args`, resolving with its exit code and output. */
export function run(binary: string, args: string[], options: RunOptions = {}): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: options.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin?.end(options.input);
  });
}

/** Runs the built `kiln` CLI (npm test compiles first) as a user would, with a clean CI-like environment. */
export function runKiln(args: string[], options: RunOptions = {}): Promise<KilnRun> {
  return run(process.execPath, [BIN, ...args], {
    env: { ...process.env, CI: 'true', NO_COLOR: '1', ...options.env },
    input: options.input ?? '',
  });
}

/** Runs a peer program, resolving with its exit code and output. */
export function runPeer(binary: string, args: string[]): Promise<KilnRun> {
  return run(binary, args);
}
