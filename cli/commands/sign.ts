import type { Command } from 'commander';
import { KilnError } from '../../oci/errors.js';
import type { Target } from '../../oci/target.js';
import { openTarget } from '../../oci/transports.js';
import { readKeyFile } from '../../signer/key-files.js';
import { loadSigningKey, type SigningKey } from '../../signer/keys.js';
import { preloadSigning } from '../../signer/bundle.js';
import { prefetchSigning, signImage, type SignResult } from '../../signer/sign.js';
import { addFormatFlag, addRegistryFlags, type RegistryFlags } from '../common.js';
import { outputSettings, printJson, printMessage, printResult, printWarning } from '../output.js';
import { takeEarlyKey } from '../early-key.js';
import { readPassphrase } from './keygen.js';
import { parseDuration } from './verify.js';

interface SignFlags extends RegistryFlags {
  key: string;
  annotations: string[];
  recursive?: boolean;
  identity?: string;
  bundle: boolean;
  tagState: boolean;
  tagStateExpiry: string;
  format: string;
}

/** Collects repeated `-a k=v` values. */
function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Parses `k=v` pairs (split at the first `=`), as a usage error when one has no `=` or an empty key. */
export function parseAnnotations(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new KilnError('USAGE', `invalid annotation "${pair}": expected KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** `kiln sign`. */
export function registerSign(program: Command): void {
  const cmd = program
    .command('sign')
    .argument('<image...>', 'images to sign: registry references or oci:DIR[:tag]')
    .description('sign images with a cosign key: a sha256-<hex>.sig signature and a Sigstore bundle referrer each')
    .requiredOption('--key <file>', 'private key (cosign.key, from kiln keygen or cosign generate-key-pair)')
    .option('-a, --annotations <key=value>', 'claim to sign into the payload (repeatable)', collect, [])
    .option('--recursive', 'on an index, also sign every manifest it lists')
    .option('--identity <repository>', 'repository to sign for (required for OCI layouts, e.g. registry.example/app)')
    .option('--no-bundle', 'store only the cosign .sig signature, no Sigstore bundle referrer')
    .option('--tag-state-expiry <duration>', 'lifetime of the repository’s new tag state (e.g. 7d, 24h)', '30d')
    .option('--no-tag-state', 'do not record the tag in the repository’s tag state (verify by tag will fail)');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
The payload is cosign's simple-signing JSON: critical.identity.docker-reference (the repository),
critical.image.docker-manifest-digest, critical.type "cosign container image signature", and optional
{annotations, tag, timestamp}. The ECDSA signature is stored as cosign stores it (a layer of the manifest
tagged sha256-<hex>.sig, appended to signatures already there) and as a Sigstore bundle (v0.3) referrer of
the image, made offline (no Fulcio, no Rekor). Signing a tag signs the digest it points to now, and records
tag → digest in the repository's signed tag state (kiln-tag-state: a growing version and an expiry), which
kiln verify checks so that a tag moved or rolled back to another signed digest fails.
Passphrase: KILN_PASSWORD or COSIGN_PASSWORD, else asked for on the terminal.
Several images are signed in one run, in order, with the key decrypted once; as cosign, the run stops at
the first image that fails (those before it stay signed) and exits 1. -o json then prints an array.

Examples:
  kiln sign --key cosign.key localhost:5000/app@sha256:…
  kiln sign --key cosign.key -a env=prod --recursive localhost:5000/app:1.0
  kiln sign --key cosign.key localhost:5000/app:1.0 localhost:5000/api:2.3
  kiln sign --key cosign.key --identity registry.example/app oci:./out:1.0`,
  );
  cmd.action(async (specs: string[], flags: SignFlags) => {
    const settings = outputSettings({ format: flags.format });
    const annotations = parseAnnotations(flags.annotations);
    const tagStateTtlSeconds = parseDuration(flags.tagStateExpiry);
    const pem = await readKeyFile(flags.key);
    const passphrase = await readPassphrase({ confirm: false, what: flags.key });
    // The key's scrypt runs on the thread pool; meanwhile the main thread loads the bundle libraries and the
    // first image's reads (manifest, tag state) go out. A key error still comes first.
    const keyTask = takeEarlyKey(flags.key, pem, passphrase) ?? loadSigningKey({ pem, passphrase, name: flags.key });
    keyTask.catch(() => undefined);
    if (flags.bundle) preloadSigning();
    const open = (spec: string): Promise<Target> => openTarget(spec, { mode: 'write', registry: { authfile: flags.authfile, insecure: flags.insecure } });
    const first = open(specs[0] ?? '').then((target) => ({ target, prefetched: prefetchSigning(target, { tagState: flags.tagState }) }));
    first.catch(() => undefined);
    let key: SigningKey;
    try {
      key = await keyTask;
    } catch (err) {
      await first.then(({ target }) => target.close({ discard: true })).catch(() => undefined);
      throw err;
    }
    const results: SignResult[] = [];
    for (const [index, spec] of specs.entries()) {
      const { target, prefetched } = index === 0 ? await first : { target: await open(spec), prefetched: undefined };
      let result: SignResult;
      try {
        result = await signImage({ target, key, annotations, recursive: flags.recursive, identity: flags.identity, bundle: flags.bundle, tagState: flags.tagState, tagStateTtlSeconds, prefetched });
        await target.close();
      } catch (err) {
        await target.close({ discard: true }).catch(() => undefined);
        if (results.length > 0) printMessage(`kiln: signed ${results.length} of ${specs.length} images before ${spec} failed`);
        throw err;
      }
      results.push(result);
      if (result.tag !== undefined) {
        printWarning(`signed tag "${result.tag}" as the digest it points to now, ${result.digest}; sign by digest to be sure what you sign`, settings);
      }
      if (!settings.json) printSigned(result);
    }
    if (settings.json) printJson(specs.length === 1 ? results[0] : results);
  });
}

function printSigned(result: SignResult): void {
  for (const s of result.signed) {
    printMessage(`Signed ${s.digest}: signature in ${s.signatureTag}${s.bundle ? `, bundle referrer ${s.bundle}` : ''}`);
    printResult(s.digest);
  }
  if (result.tagState) printMessage(`Tag state of ${result.identity}: version ${result.tagState.version}, expires ${result.tagState.expires}`);
}
