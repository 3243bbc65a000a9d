import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/kiln.js', import.meta.url));

/** `kiln serve` running as a real process. */
export interface ServeProcess {
  /** `http://HOST:PORT` as printed by the server. */
  url: string;
  /** `HOST:PORT`, for image references. */
  host: string;
  child: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Everything the server wrote to stdout so far: its access log, one JSON line per request. */
  stdout(): string;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts the built CLI's `kiln serve` with `args` and resolves once it prints `listening on http://…`
 * on stderr; rejects when it exits first or does not start within 20 s.
 */
export function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  // Always read: a server whose stdout pipe fills up cannot write its access log, nor exit.
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  let started = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiln serve did not start: ${stderr}`));
    }, 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      // The access log can grow large in a long test: keep its last megabyte.
      stderr = (stderr + d.toString()).slice(-(1 << 20));
      if (started) return;
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (!url) return;
      started = true;
      clearTimeout(timer);
      resolve({
        url,
        host: url.slice('http://'.length),
        child,
        stderr: () => stderr,
        stdout: () => stdout,
        stop: (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    });
    void exited.then((code) => {
      clearTimeout(timer);
      // A no-op once the promise resolved (the server started and later stopped).
      reject(new Error(`kiln serve exited with ${code}: ${stderr}`));
    });
  });
}
