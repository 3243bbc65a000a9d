import { readFileSync } from 'node:fs';
import { loadSigningKey, type SigningKey } from '../signer/keys.js';
import { passphraseFromEnvironment } from './passphrase-env.js';

// `kiln sign` spends most of its time decrypting the key (scrypt N=32768: ~0.1 s on the thread pool) and, before
// that, loading the CLI's modules (~40 ms on the main thread). Started here, before those modules load, the two
// overlap. Only a plain command line qualifies (`kiln sign … --key FILE …` with the passphrase in the
// environment); the sign command uses the result only for the same file, content and passphrase, so a guess
// that is wrong costs CPU, never correctness.

interface EarlyKey {
  path: string;
  passphrase: string;
  pem: string;
  key: Promise<SigningKey>;
}

let early: EarlyKey | undefined;

/** Starts decrypting the signing key of a `kiln sign` command line (`args` without node and the script). */
export function startEarlyKeyDecryption(args: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  early = undefined;
  if (args.find((arg) => !arg.startsWith('-')) !== 'sign') return;
  const path = keyOption(args);
  const passphrase = passphraseFromEnvironment(env);
  if (path === undefined || passphrase === undefined) return;
  // Read synchronously (a key file is small): the main thread is about to be busy loading modules, and scrypt
  // must be queued before that, not when a file read's callback gets its turn.
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    return; // The sign command reads it again and reports why it cannot.
  }
  const key = loadSigningKey({ pem, passphrase, name: path });
  key.catch(() => undefined); // Failures are the sign command's to report, from its own promise.
  early = { path, passphrase, pem, key };
}

/** The last `--key FILE` / `--key=FILE` (commander keeps the last), or undefined when there is none. */
function keyOption(args: readonly string[]): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === '--key') path = args[++i];
    else if (arg.startsWith('--key=')) path = arg.slice('--key='.length);
  }
  return path === undefined || path.startsWith('-') ? undefined : path;
}

/**
 * The key decryption started early for exactly this file, content and passphrase, or undefined. It is handed
 * out once: the decrypted key is not kept around for anyone else.
 */
export function takeEarlyKey(path: string, pem: string, passphrase: string): Promise<SigningKey> | undefined {
  const started = early;
  if (!started || started.path !== path || started.passphrase !== passphrase || started.pem !== pem) return undefined;
  early = undefined;
  return started.key;
}
