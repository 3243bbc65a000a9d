import { Option, type Command } from 'commander';
import { homedir } from 'node:os';
import { errorMessage, isKilnError, KilnError } from '../../oci/errors.js';
import { withValidity, parseRfc3339, type KeyValidity } from '../../signer/key-validity.js';
import { loadPolicyFile, type Policy } from '../../signer/policy.js';
import { policyImageOf, verifyWithPolicy, type PolicyReport } from '../../signer/policy-verify.js';
import { openTarget } from '../../oci/transports.js';
import { preloadVerifying } from '../../signer/bundle.js';
import { readKeyFile } from '../../signer/key-files.js';
import { loadPublicKey, type PublicKey } from '../../signer/keys.js';
import { defaultTrustDir, FileTrustCache } from '../../signer/trust-cache.js';
import { verifyImage, type VerifyReport } from '../../signer/verify-image.js';
import { addRegistryFlags, type RegistryFlags } from '../common.js';
import { formatError, printJson, printMessage, printResult } from '../output.js';

interface VerifyFlags extends RegistryFlags {
  key: string[];
  keyValidFrom?: string;
  keyValidUntil?: string;
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

async function loadKeys(paths: readonly string[], validity: KeyValidity): Promise<PublicKey[]> {
  const keys: PublicKey[] = [];
  for (const path of paths) keys.push(withValidity(loadPublicKey(await readKeyFile(path), path), validity));
  return keys;
}

/** `--key-valid-from/--key-valid-until` as a window (a usage error when not RFC 3339 or empty). */
function validityFlags(flags: VerifyFlags): KeyValidity {
  const validity: KeyValidity = {};
  if (flags.keyValidFrom !== undefined) validity.from = parseRfc3339(flags.keyValidFrom, '--key-valid-from');
  if (flags.keyValidUntil !== undefined) validity.until = parseRfc3339(flags.keyValidUntil, '--key-valid-until');
  if (validity.from && validity.until && validity.from >= validity.until) throw new KilnError('USAGE', '--key-valid-from must be before --key-valid-until');
  return validity;
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
    .argument('<image...>', 'images to verify: registry references or oci:DIR[:tag]')
    .description('verify images’ signatures (cosign .sig and Sigstore bundle referrers) with trusted public keys, offline')
    .option('--key <file>', 'trusted public key, PEM (cosign.pub); repeatable', collect, [])
    .option('--key-valid-from <time>', 'accept only signatures the --key keys made at or after this RFC 3339 time')
    .option('--key-valid-until <time>', 'accept only signatures the --key keys made before this RFC 3339 time')
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
simple-signing payload), validity (for a key with a window: its signed timestamp lies in the window),
digest (it names the image's manifest digest), identity (its docker-reference is the repository), age
(with --max-age). Then, when a tag is verified, its binding in the repository's signed tag state: state
(signed by a --key within its window, for this repository), freshness (no older than a version seen before,
remembered in $KILN_TRUST_DIR or $XDG_DATA_HOME/kiln/trust), expiry, binding (the tag maps to this digest).
Verification succeeds when one signature passes every check and the tag is bound.
Nothing is fetched but the image's manifest, its .sig manifest, its referrers, the tag state and small blobs.

Key windows: --key-valid-from/--key-valid-until (RFC 3339) bound when the --key keys may have signed; a
signature (its optional.timestamp) or tag state (its issued time) outside the window fails (exit 12).
Key rotation: a repository may hold statements, signed by an old key, handing over to a new key from a time
(kiln rotate-key). Verifying with the old key then also trusts the new key from that time on, along any
unbroken chain of valid statements, and the old key only for what it signed before; a forged or broken
chain trusts nothing new.

Several images are verified in one run (one process: much faster than one run each), each reported as
above, -o json then prints an array. Exit status is the first failing image's, in argument order — what
cosign, which stops at the first failure, exits with; Kiln checks them all and prints one line per failure.

With --policy (containers-policy.json(5)) the image's transport and scope pick the requirements, all of
which must hold: insecureAcceptAnything, reject, sigstoreSigned {keyPath|keyPaths|keyData|keyDatas,
signedIdentity, keyValidity {from, until} (Kiln's)}. Kiln and cosign signatures name a repository, not a
tag: use signedIdentity matchRepository (or exactRepository); the tag is bound by the tag state. Relative
keyPaths are relative to the policy file. signedBy (GPG), fulcio, Rekor and unknown requirement types
reject: verification fails closed.

Exit status: 0 verified, 10 no signature, 11 no such tag, 12 no matching signature, 1 other errors.

Examples:
  kiln verify --key cosign.pub localhost:5000/app:1.0
  kiln verify --key cosign.pub localhost:5000/app:1.0 localhost:5000/api:2.3 localhost:5000/db@sha256:…
  kiln verify --key cosign.pub -o json --max-age 30d localhost:5000/app@sha256:…
  kiln verify --key cosign.pub --key-valid-until 2027-01-01T00:00:00Z localhost:5000/app:1.0
  kiln verify --key cosign.pub --identity registry.example/app oci:./mirror:1.0
  kiln verify --policy policy.json localhost:5000/app:1.0`,
  );
  cmd.action(async (specs: string[], flags: VerifyFlags) => {
    if ((flags.key.length > 0) === (flags.policy !== undefined)) throw new KilnError('USAGE', 'pass either --key (repeatable) or --policy');
    if (flags.policy !== undefined && flags.identity !== undefined) throw new KilnError('USAGE', '--identity has no effect with --policy: use its signedIdentity');
    if (flags.policy !== undefined && (flags.keyValidFrom !== undefined || flags.keyValidUntil !== undefined)) {
      throw new KilnError('USAGE', '--key-valid-from/--key-valid-until apply to --key: with --policy use its keyValidity');
    }
    const maxAgeSeconds = flags.maxAge === undefined ? undefined : parseDuration(flags.maxAge);
    // Compiling @sigstore/verify (main thread) overlaps the first registry round trips (network wait).
    preloadVerifying();
    const trustCache = new FileTrustCache(defaultTrustDir(process.env, homedir()));
    const policy = flags.policy === undefined ? undefined : await loadPolicyFile(flags.policy);
    const keys = await loadKeys(flags.key, validityFlags(flags));
    const json = flags.format === 'json';
    const reports: Array<VerifyReport | PolicyReport | { ok: false; image: string; error: string }> = [];
    let first: { err: unknown; image: string } | undefined;
    const fail = (err: unknown, image: string): void => {
      // One image: its error is the run's, printed once at the top. Several: a line each, then a summary.
      if (specs.length === 1) throw err;
      printMessage(formatError(err));
      first ??= { err, image };
    };
    for (const spec of specs) {
      let report: VerifyReport | PolicyReport;
      try {
        report = await verifyOne(spec, { flags, policy, keys, maxAgeSeconds, trustCache });
      } catch (err) {
        reports.push({ ok: false, image: spec, error: errorMessage(err) });
        fail(err, spec);
        continue;
      }
      reports.push(report);
      if (!json) {
        if ('policy' in report) printPolicyText(report);
        else printText(report);
      }
      if (!report.ok) {
        if (json && specs.length === 1) printJson(report);
        fail(new KilnError(report.failure?.code ?? 'SIGNATURE_MISMATCH', report.failure?.message ?? `${report.image}: rejected`), spec);
      }
    }
    if (json) printJson(specs.length === 1 ? reports[0] : reports);
    if (first !== undefined) {
      const failed = reports.filter((r) => !r.ok).length;
      const code = isKilnError(first.err) ? first.err.code : 'INTERNAL';
      throw new KilnError(code, `${failed} of ${specs.length} images failed verification; the exit status is that of the first, ${first.image}`);
    }
  });
}

/** Verifies one image with --key or --policy; failures are in the report, errors (unreachable, bad key) thrown. */
async function verifyOne(
  spec: string,
  options: { flags: VerifyFlags; policy: Policy | undefined; keys: PublicKey[]; maxAgeSeconds: number | undefined; trustCache: FileTrustCache },
): Promise<VerifyReport | PolicyReport> {
  const { flags } = options;
  const target = await openTarget(spec, { mode: 'read', registry: { authfile: flags.authfile, insecure: flags.insecure } });
  try {
    const common = { target, maxAgeSeconds: options.maxAgeSeconds, tagBinding: flags.tagBinding, trustCache: options.trustCache };
    if (options.policy) return await verifyWithPolicy({ ...common, image: policyImageOf(spec), policy: options.policy });
    return await verifyImage({ ...common, keys: options.keys, identity: flags.identity });
  } finally {
    await target.close();
  }
}

function printPolicyText(report: PolicyReport): void {
  if (!report.ok) return;
  printMessage(`Policy ${report.policy}, scope ${JSON.stringify(report.scope)}:`);
  for (const r of report.requirements) {
    printMessage(`  ok   ${r.type}: ${r.detail}`);
    if (r.report) printText(r.report);
  }
  if (!report.requirements.some((r) => r.report)) printResult(`Accepted by policy: ${report.image}`);
}
