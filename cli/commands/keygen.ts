import type { Command } from 'commander';
import { KilnError } from '../../oci/errors.js';
import { readKeyFile, writeKeyPair } from '../../signer/key-files.js';
import { generateKeyPair, loadPublicKey, loadSigningKey } from '../../signer/keys.js';
import { parseRfc3339 } from '../../signer/key-validity.js';
import { rotateKey, type RotateResult } from '../../signer/rotate.js';
import { openTarget } from '../../oci/transports.js';
import { addFormatFlag, addRegistryFlags, type RegistryFlags } from '../common.js';
import { printJson, printMessage } from '../output.js';
import { passphraseFromEnvironment } from '../passphrase-env.js';
import { promptTerminal } from '../prompt.js';

interface KeygenFlags {
  outputKeyPrefix: string;
  force?: boolean;
  format: string;
}

/** The key passphrase: KILN_PASSWORD, COSIGN_PASSWORD, else a prompt on the terminal (twice when `confirm`). */
export async function readPassphrase(options: { confirm: boolean; what: string }): Promise<string> {
  const fromEnvironment = passphraseFromEnvironment();
  if (fromEnvironment !== undefined) return fromEnvironment;
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
  registerRotateKey(program);
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

interface RotateFlags extends RegistryFlags {
  key: string;
  newKey: string;
  validFrom?: string;
  identity?: string;
  format: string;
}

/** `kiln rotate-key`: keygen's sibling (registered with it), signing a new public key with the old private key. */
function registerRotateKey(program: Command): void {
  const cmd = program
    .command('rotate-key')
    .argument('<repository...>', 'repositories whose signers move to the new key: REGISTRY/REPO or oci:DIR')
    .description('hand a repository over from an old key to a new one: a rotation statement signed by the old key')
    .requiredOption('--key <file>', 'the old private key (cosign.key), which verifiers trust')
    .requiredOption('--new-key <file>', 'the new public key (e.g. from kiln keygen --output-key-prefix new)')
    .option('--valid-from <time>', 'RFC 3339 time the new key takes over (default: now)')
    .option('--identity <repository>', 'repository name for OCI layouts (e.g. registry.example/app)');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
The statement {repository, old key, new key, validFrom, issued}, signed by the old key, is appended to the
repository's kiln-tag-state artifact (so kiln copy --with-referrers carries it). kiln verify --key old.pub
then trusts the new key for signatures and tag states made from validFrom on, and the old key only for
those made before; a chain of rotations is followed, a forged or broken one trusts nothing new. A key
rotates once per repository (two statements by one key are a fork, which verifiers refuse). After the
rotation, kiln sign --key new.key extends the tag state the old key signed.

Examples:
  COSIGN_PASSWORD=… kiln keygen --output-key-prefix new
  kiln rotate-key --key cosign.key --new-key new.pub localhost:5000/app localhost:5000/api
  kiln rotate-key --key cosign.key --new-key new.pub --valid-from 2027-01-01T00:00:00Z localhost:5000/app`,
  );
  cmd.action(async (specs: string[], flags: RotateFlags) => {
    const validFrom = flags.validFrom === undefined ? undefined : parseRfc3339(flags.validFrom, '--valid-from');
    const newKey = loadPublicKey(await readKeyFile(flags.newKey), flags.newKey);
    const oldKey = await loadSigningKey({ pem: await readKeyFile(flags.key), passphrase: await readPassphrase({ confirm: false, what: flags.key }), name: flags.key });
    const results: RotateResult[] = [];
    for (const spec of specs) {
      const target = await openTarget(spec, { mode: 'write', registry: { authfile: flags.authfile, insecure: flags.insecure } });
      try {
        results.push(await rotateKey({ target, oldKey, newKey, identity: flags.identity, validFrom }));
        await target.close();
      } catch (err) {
        await target.close({ discard: true }).catch(() => undefined);
        throw err;
      }
      const r = results.at(-1);
      if (r && flags.format !== 'json') printMessage(`Rotated ${r.repository}: key ${r.oldKeyId.slice(0, 12)} → ${r.newKeyId.slice(0, 12)} from ${r.validFrom} (statement ${r.statementDigest} in ${r.tag})`);
    }
    if (flags.format === 'json') printJson(specs.length === 1 ? results[0] : results);
  });
}
