import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirePeer } from './peers.js';

/** Options of a throwaway CNCF Distribution registry. */
export interface DistributionOptions {
  /** Turns on htpasswd (Basic) auth with this one user. */
  htpasswd?: { user: string; password: string };
  /** Turns on token (Bearer) auth: tokens from `realm`, signed by the key of the PEM certificate `rootCertBundle`. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
}

/** A running registry: `host` is `127.0.0.1:PORT`; `storageDir` is its filesystem storage root. */
export interface RunningDistribution {
  host: string;
  storageDir: string;
  stop(): Promise<void>;
}

/** A free TCP port on loopback (closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(host: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not answer on ${host} within 20s: ${stderr()}`);
}

/** Starts `docker-registry serve` on a free loopback port with storage in a temp dir. */
export async function startDistribution(options: DistributionOptions = {}): Promise<RunningDistribution> {
  const binary = requirePeer('docker-registry', 'docker-registry');
  const dir = await mkdtemp(join(tmpdir(), 'kiln-distribution-'));
  const storageDir = join(dir, 'storage');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (options.htpasswd) {
    const htpasswd = requirePeer('htpasswd', 'apache2-utils');
    // Distribution only accepts bcrypt entries (-B).
    const entry = execFileSync(htpasswd, ['-Bbn', options.htpasswd.user, options.htpasswd.password], { encoding: 'utf8' });
    const file = join(dir, 'htpasswd');
    await writeFile(file, entry.trim() + '\n', { mode: 0o600 });
    lines.push('auth:', '  htpasswd:', '    realm: kiln-test', `    path: ${file}`);
  }
  if (options.token) {
    const t = options.token;
    lines.push('auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.rootCertBundle}`);
  }
  const config = join(dir, 'config.yml');
  await writeFile(config, lines.join('\n') + '\n');

  const child = spawn(binary, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let errText = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errText = (errText + chunk.toString()).slice(-4000);
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilUp(host, child, () => errText);
  } catch (err) {
    await stop();
    throw err;
  }
  return { host, storageDir, stop };
}
