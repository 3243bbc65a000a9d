import { Option, type Command } from 'commander';
import { homedir } from 'node:os';
import { KilnError } from '../../oci/errors.js';
import { loadPolicyFile } from '../../signer/policy.js';
import { policyImageOf, verifyWithPolicy, type PolicyReport } from '../../signer/policy-verify.js';
import { openTarget } from '../../oci/transports.js';
import { readKeyFile } from '../../signer/key-files.js';
import { loadPublicKey, type PublicKey } from '../../signer/keys.js';
import { defaultTrustDir, FileTrustCache } from '../../signer/trust-cache.js';
import { assertVerified, verifyImage, type VerifyReport } from '../../signer/verify-image.js';
import { addRegistryFlags, type RegistryFlags } from '../common.js';
import { printJson, printMessage, printResult } from '../output.js';

interface VerifyFlags extends RegistryFlags {
  key: string[];
  policy?: string;
  identity?: string;
  maxAge?: string;
  tagBinding: boolean;
  format: string;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses `--max-age`: seconds, or a number with s, m, h or d (`90s`, `24h`, `7d`). */
export function parseDuration(text: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) throw new KilnError('USAGE', `invalid duration "${text}": expected e.g. 3600, 90m, 24h or 7d`);
  return Number(match[1]) * (UNITS[match[2] || 's'] ?? 1);
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function loadKeys(paths: readonly string[]): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const path of paths) keys.push(loadPublicKey(await readKeyFile(path), path));
  return keys;
}

/** On success, which signatures passed (stderr) and the verdict (stdout); a failure is only the one error line. */
function printText(report: VerifyReport): void {
  if (!report.ok) return;
  const valid = report.signatures.filter((s) => s.ok);
  printMessage(`Verification for ${report.image} (${report.digest ?? 'unresolved'}), identity ${report.identity}:`);
  for (const s of report.signatures) {
    const last = s.checks.at(-1);
    const mark = s.ok ? 'ok  ' : 'FAIL';
    printMessage(`  ${mark} ${s.source}: ${s.ok ? `${s.checks.map((c) => c.check).join(', ')} (${s.key?.name ?? ''}${s.timestamp ? `, signed ${s.timestamp}` : ''})` : `${last?.check ?? ''}: ${last?.detail ?? ''}`}`);
  }
  const binding = report.tagBinding;
  if (binding) printMessage(`  ok   tag binding: ${binding.checks.at(-1)?.detail ?? ''} (tag state version ${binding.version ?? '?'}, expires ${binding.expires ?? '?'})`);
  const named = report.digest === undefined || report.image.endsWith(`@${report.digest}`) ? report.image : `${report.image}@${report.digest}`;
  printResult(`Verified OK: ${named} (${valid.length} of ${report.signatures.length} signatures valid)`);
}

/** `kiln verify`. */
export function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .argument('<image>', 'image to verify: a registry reference or oci:DIR[:tag]')
    .description('verify an image’s signatures (cosign .sig and Sigstore bundle referrers) with trusted public keys, offline')
    .option('--key <file>', 'trusted public key, PEM (cosign.pub); repeatable', collect, [])
    .option('--policy <file>', 'containers-policy.json deciding by location which keys and identities are required')
    .option('--identity <repository>', 'repository the signatures must name (default: the image’s; required for OCI layouts)')
    .option('--max-age <duration>', 'refuse signatures older than this (e.g. 24h, 7d); needs a signed timestamp')
    .option('--no-tag-binding', 'do not check the tag against the repository’s signed tag state (cosign’s behaviour)')
    .addOption(new Option('-o, --format <format>', 'output format').choices(['text', 'json']).default('text'));
  addRegistryFlags(cmd);
  cmd.addHelpText(
    'after',
    `
Each signature is checked in order: signature (crypto over the payload, with a --key), payload (a cosign
simple-signing payload), digest (it names the image's manifest digest), identity (its docker-reference is
the repository), age (with --max-age). Then, when a tag is verified, its binding in the repository's signed
tag state: state (signed by a --key, for this repository), freshness (no older than a version seen before,
remembered in $KILN_TRUST_DIR or $XDG_DATA_HOME/kiln/trust), expiry, binding (the tag maps to this digest).
Verification succeeds when one signature passes every check and the tag is bound.
Nothing is fetched but the image's manifest, its .sig manifest, its referrers and their small blobs.

With --policy (containers-policy.json(5)) the image's transport and scope pick the requirements, all of
which must hold: insecureAcceptAnything, reject, sigstoreSigned {keyPath|keyPaths|keyData|keyDatas,
signedIdentity}. Kiln and cosign signatures name a repository, not a tag: use signedIdentity matchRepository
(or exactRepository); the tag is bound by the tag state. Relative keyPaths are relative to the policy file.
signedBy (GPG), fulcio, Rekor and unknown requirement types reject: verification fails closed.

Exit status: 0 verified, 10 no signature, 11 no such tag, 12 no matching signature, 1 other errors.

Examples:
  kiln verify --key cosign.pub localhost:5000/app:1.0
  kiln verify --key cosign.pub -o json --max-age 30d localhost:5000/app@sha256:…
  kiln verify --key cosign.pub --identity registry.example/app oci:./mirror:1.0
  kiln verify --policy policy.json localhost:5000/app:1.0`,
  );
  cmd.action(async (spec: string, flags: VerifyFlags) => {
    if ((flags.key.length > 0) === (flags.policy !== undefined)) throw new KilnError('USAGE', 'pass either --key (repeatable) or --policy');
    if (flags.policy !== undefined && flags.identity !== undefined) throw new KilnError('USAGE', '--identity has no effect with --policy: use its signedIdentity');
    const maxAgeSeconds = flags.maxAge === undefined ? undefined : parseDuration(flags.maxAge);
    const trustCache = new FileTrustCache(defaultTrustDir(process.env, homedir()));
    const policy = flags.policy === undefined ? undefined : await loadPolicyFile(flags.policy);
    const keys = await loadKeys(flags.key);
    const target = await openTarget(spec, { mode: 'read', registry: { authfile: flags.authfile, insecure: flags.insecure } });
    try {
      const common = { target, maxAgeSeconds, tagBinding: flags.tagBinding, trustCache };
      if (policy) {
        const report = await verifyWithPolicy({ ...common, image: policyImageOf(spec), policy });
        if (flags.format === 'json') printJson(report);
        else if (report.ok) printPolicyText(report);
        if (!report.ok) throw new KilnError(report.failure?.code ?? 'SIGNATURE_MISMATCH', report.failure?.message ?? `${report.image}: rejected`);
        return;
      }
      const report = await verifyImage({ ...common, keys, identity: flags.identity });
      if (flags.format === 'json') printJson(report);
      else printText(report);
      assertVerified(report);
    } finally {
      await target.close();
    }
  });
}


function printPolicyText(report: PolicyReport): void {
  printMessage(`Policy ${report.policy}, scope ${JSON.stringify(report.scope)}:`);
  for (const r of report.requirements) {
    printMessage(`  ok   ${r.type}: ${r.detail}`);
    if (r.report) printText(r.report);
  }
  if (!report.requirements.some((r) => r.report)) printResult(`Accepted by policy: ${report.image}`);
}
