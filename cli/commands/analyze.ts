import { readFile, writeFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
// The analyzer is loaded when an analysis runs, not with the CLI: every other command would pay its start-up.
import type { AnalysisResult } from '../../analyzer/analyze.js';
import type { CiEvaluation, GateNumbers, RuleKey } from '../../analyzer/rules.js';
import { KilnError, errorMessage } from '../../oci/errors.js';
import type { Target } from '../../oci/target.js';
import { openTarget } from '../../oci/transports.js';
import { addFormatFlag, addRegistryFlags, platformFlag, type RegistryFlags } from '../common.js';
import { formatBytes, outputSettings, printMessage, printResult, printWarning } from '../output.js';

export interface AnalyzeFlags extends RegistryFlags {
  platform?: string;
  ci?: boolean;
  ciConfig?: string;
  lowestEfficiency?: string;
  highestWastedBytes?: string;
  highestUserWastedPercent?: string;
  gate: 'dive' | 'corrected';
  format: string;
  json?: string;
  html?: string;
  quiet?: boolean;
}

/** dive's default CI config file, read from the current directory. */
const DEFAULT_CI_CONFIG = '.dive-ci';

/** `kiln analyze IMAGE`. */
export function registerAnalyze(program: Command): void {
  const cmd = program
    .command('analyze')
    .argument('<image>', 'image reference or transport (oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE, REF)')
    .description("score an image's layer efficiency as dive does, show the waste an overlay really carries, and gate CI")
    .option('--platform <os/arch[/variant]>', "analyze this platform's image of an index (default: this machine's)")
    .option('--ci', 'check the CI rules and exit 1 if one fails (also when CI=true)')
    .option('--ci-config <file>', `rules file (default: ${DEFAULT_CI_CONFIG} in the current directory, if present)`)
    .option('--lowestEfficiency <ratio>', 'CI rule: lowest allowed efficiency, 0-1 or "disabled" (default 0.9)')
    .option('--highestWastedBytes <bytes>', 'CI rule: most wasted bytes, e.g. 20MB or 20MiB, or "disabled" (default)')
    .option('--highestUserWastedPercent <ratio>', 'CI rule: most wasted bytes relative to the layers after the first, 0-1 (default 0.1)')
    .addOption(new Option('--gate <numbers>', "numbers the CI rules judge: dive's, or the overlay-corrected ones").choices(['dive', 'corrected']).default('dive'))
    .option('-j, --json <file>', "write dive's JSON export (layer[], image{…}) plus Kiln's fields under \"kiln\"")
    .option('--html <file>', 'write a one-page HTML report (per-layer chart of kept and wasted bytes)')
    .option('-q, --quiet', 'no progress lines on stderr');
  addRegistryFlags(cmd);
  addFormatFlag(cmd);
  cmd.addHelpText(
    'after',
    `
Numbers: "dive" figures are wagoodman/dive v0.13.1's, quirks included (same image, same numbers); "corrected"
figures count what an overlay filesystem really hides: shadowed, deleted and opaque-hidden bytes, never the copy
that survives. In CI mode the output is dive's CI report; exit 1 when a rule fails or is misconfigured.
.dive-ci:
  rules:
    lowestEfficiency: 0.9            # fail when efficiency < this
    highestWastedBytes: disabled     # fail when wasted bytes > this (20MB = 20,000,000; 20MiB = 20*2^20)
    highestUserWastedPercent: 0.1    # fail when wasted / bytes of the layers after the first > this`,
  );
  cmd.action(async (image: string, flags: AnalyzeFlags) => {
    const target = await openTarget(image, { mode: 'read', registry: { authfile: flags.authfile, insecure: flags.insecure } });
    await analyzeTarget(target, image, flags, printResult);
  });
}

/** Options `kiln build --analyze` passes: analyze's flags with their defaults. */
export const DEFAULT_ANALYZE_FLAGS: AnalyzeFlags = { gate: 'dive', format: 'text' };

/**
 * Analyzes the image `target` names, writes the reports, prints the result with `print` and, in CI mode, throws
 * when a rule fails. Closes `target`. Shared by `kiln analyze` and `kiln build --analyze`.
 */
export async function analyzeTarget(target: Target, image: string, flags: AnalyzeFlags, print: (text: string) => void): Promise<void> {
  const settings = outputSettings({ format: flags.format, quiet: flags.quiet });
  const [{ analyze }, { diveExport, goJson }, { goParseBool }, { formatHtmlReport }, { formatCiReport, formatTextReport }, { evaluateCiRules }] = await Promise.all([
    import('../../analyzer/analyze.js'),
    import('../../analyzer/export.js'),
    import('../../analyzer/go-format.js'),
    import('../../analyzer/html.js'),
    import('../../analyzer/report.js'),
    import('../../analyzer/rules.js'),
  ]);
  const ci = Boolean(flags.ci) || goParseBool(process.env.CI) === true;
  let result: AnalysisResult;
  let ruleValues: Record<RuleKey, string> | undefined;
  try {
    ruleValues = ci ? await loadRules(flags) : undefined;
    result = await analyze({
      target,
      platform: platformFlag(flags.platform),
      fileLists: flags.json !== undefined,
      onProgress: settings.quiet ? undefined : (e) => printMessage(`read    layer ${e.index + 1}/${e.total} ${e.digest} (${formatBytes(e.compressedSize)})`),
    });
  } finally {
    await target.close();
  }
  for (const warning of result.warnings) printWarning(warning, settings);
  const numbers: GateNumbers = flags.gate === 'corrected' ? result.corrected : result.dive;
  const evaluation = ruleValues ? evaluateCiRules(ruleValues, numbers) : undefined;
  if (flags.json !== undefined) await writeReport(flags.json, goJson(diveExport(result, { ci: evaluation })));
  if (flags.html !== undefined) await writeReport(flags.html, formatHtmlReport(result, evaluation));
  if (flags.format === 'json') {
    // The per-layer file lists are for the --json export only; stdout keeps the summary.
    const summary = { ...result, layers: result.layers.map(({ fileList: _lists, ...layer }) => layer) };
    print(JSON.stringify(evaluation ? { ...summary, ci: { gate: flags.gate, ...evaluation } } : summary, null, 2));
  } else if (evaluation) print(formatCiReport(numbers, flags.gate === 'corrected' ? [] : result.dive.inefficientFiles, evaluation, settings));
  else print(formatTextReport(result));
  if (evaluation && !evaluation.pass) throw gateError(evaluation, image);
}

/** Rule values: flags over the CI config file over dive's defaults; a bad file is an error before any work. */
async function loadRules(flags: AnalyzeFlags): Promise<Record<RuleKey, string>> {
  const file = flags.ciConfig ?? DEFAULT_CI_CONFIG;
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || flags.ciConfig !== undefined) {
      throw new KilnError('VALIDATION', `cannot read CI config ${file}: ${errorMessage(err)}`, { cause: err });
    }
  }
  printMessage(text === undefined ? '  Using default CI config' : `  Using CI config: ${file}`);
  let doc: unknown;
  try {
    doc = text === undefined ? undefined : (await import('yaml')).parse(text);
  } catch (err) {
    throw new KilnError('VALIDATION', `CI config ${file} is not valid YAML: ${errorMessage(err).split('\n')[0] ?? ''}`, { cause: err });
  }
  const { ciRuleValues } = await import('../../analyzer/rules.js');
  return ciRuleValues({
    file: doc,
    fileName: file,
    flags: { lowestEfficiency: flags.lowestEfficiency, highestWastedBytes: flags.highestWastedBytes, highestUserWastedPercent: flags.highestUserWastedPercent },
  });
}

async function writeReport(file: string, text: string): Promise<void> {
  try {
    await writeFile(file, text);
  } catch (err) {
    throw new KilnError('VALIDATION', `cannot write ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

function gateError(evaluation: CiEvaluation, image: string): KilnError {
  if (evaluation.misconfigured) {
    const bad = evaluation.rules.filter((r) => r.status === 'MISCONFIGURED').map((r) => `${r.key}: ${r.message}`);
    return new KilnError('VALIDATION', `CI rules misconfigured: ${bad.join('; ')}`, { hint: 'fix .dive-ci or the rule flags' });
  }
  const failed = evaluation.rules.filter((r) => r.status === 'FAIL').map((r) => r.key);
  return new KilnError('VALIDATION', `CI rules failed for ${image}: ${failed.join(', ')}`);
}
