import type { Command } from 'commander';
import { KilnError } from '../../oci/errors.js';
import { writeKeyPair } from '../../signer/key-files.js';
import { generateKeyPair, loadPublicKey } from '../../signer/keys.js';
import { addFormatFlag } from '../common.js';
import { printJson, printMessage } from '../output.js';
import { promptTerminal } from '../prompt.js';

interface KeygenFlags {
  outputKeyPrefix: string;
  force?: boolean;
  format: string;
}

/** Environment variables holding the key passphrase, strongest first; set-but-empty means an empty passphrase (as cosign). */
const PASSPHRASE_ENV = ['KILN_PASSWORD', 'COSIGN_PASSWORD'] as const;

/** The key passphrase: KILN_PASSWORD, COSIGN_PASSWORD, else a prompt on the terminal (twice when `confirm`). */
export async function readPassphrase(options: { confirm: boolean; what: string }): Promise<string> {
  for (const name of PASSPHRASE_ENV) {
    const value = process.env[name];
    if (value !== undefined) return value;
  }
  if (!process.stdin.isTTY) {
    throw new KilnError('USAGE', `no passphrase for ${options.what}: no terminal to ask on`, { hint: 'set COSIGN_PASSWORD or KILN_PASSWORD' });
  }
  const first = await promptTerminal(`Enter password for ${options.what}: `, true);
  if (options.confirm && (await promptTerminal(`Enter password for ${options.what} again: `, true)) !== first) {
    throw new KilnError('USAGE', 'the passwords do not match');
  }
  return first;
}

/** `kiln keygen` (alias `generate-key-pair`). */
export function registerKeygen(program: Command): void {
  const cmd = program
    .command('keygen')
    .alias('generate-key-pair')
    .description('generate an ECDSA P-256 key pair in cosign’s format: PREFIX.key (encrypted) and PREFIX.pub')
    .option('--output-key-prefix <prefix>', 'path prefix of the two files', 'cosign')
    .option('-f, --force', 'replace existing key files');
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
The private key is always encrypted (scrypt N=32768,r=8,p=1 + NaCl secretbox, PEM "ENCRYPTED SIGSTORE
PRIVATE KEY"), so cosign reads it, and written with mode 0600. The passphrase comes from KILN_PASSWORD or
COSIGN_PASSWORD (set to "" for none), else it is asked for twice on the terminal.

Examples:
  kiln keygen                                   # cosign.key + cosign.pub
  COSIGN_PASSWORD=… kiln keygen --output-key-prefix ci/release`,
  );
  cmd.action(async (flags: KeygenFlags) => {
    const passphrase = await readPassphrase({ confirm: true, what: 'private key' });
    const keys = await generateKeyPair({ passphrase });
    const files = await writeKeyPair({ prefix: flags.outputKeyPrefix, keys, force: flags.force });
    const keyId = loadPublicKey(keys.publicKeyPem, files.publicKeyPath).id;
    if (flags.format === 'json') printJson({ ...files, keyId });
    else {
      printMessage(`Private key written to ${files.privateKeyPath}`);
      printMessage(`Public key written to ${files.publicKeyPath}`);
    }
  });
}
