import { Option, type Command } from 'commander';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { KilnError, errorMessage, isKilnError } from '../../oci/errors.js';
import { addRegistryFlags, platformFlag, type RegistryFlags } from '../common.js';
import { parseBuildArgs, parseBuildContexts, parseCacheFlag, parseLabels, parseOutputFlag, parseSecretFlag, type BuildOutput } from '../build-flags.js';
import { printMessage, printResult } from '../output.js';
import { createBuildProgress } from '../build-progress.js';

interface BuildFlags extends RegistryFlags {
  tag: string[];
  file?: string;
  buildArg: string[];
  target?: string;
  platform?: string;
  noCache?: boolean;
  pull?: boolean;
  label: string[];
  iidfile?: string;
  metadataFile?: string;
  quiet?: boolean;
  progress: string;
  output: string[];
  push?: boolean;
  buildContext: string[];
  secret: string[];
  sourceDateEpoch?: string;
  cacheFrom: string[];
  cacheTo: string[];
  analyze?: boolean;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `kiln build [flags] CONTEXT`: docker/buildx flag names. */
export function registerBuild(program: Command): void {
  const cmd = program
    .command('build')
    .argument('<context>', 'build context: a directory, or - for a tar on stdin')
    .description('build an image from a Dockerfile, daemonless and reproducible')
    .option('-t, --tag <name>', 'name the image in the local store (repeatable); with --push, push it there', collect, [])
    .option('-f, --file <path>', 'Dockerfile (default: CONTEXT/Dockerfile)')
    .option('--build-arg <key=value>', 'set a build-time ARG; a bare KEY takes its value from the environment', collect, [])
    .option('--target <stage>', 'build this stage (default: the last)')
    .option('--platform <os/arch[/variant]>', 'platform of the image (default: this host\'s)')
    .option('--no-cache', 'run every step, ignoring the build cache')
    .option('--pull', 're-fetch base images even when the local store has them')
    .option('--label <key=value>', 'add a label to the image (repeatable)', collect, [])
    .option('--iidfile <file>', 'write the image (manifest) digest to a file')
    .option('--metadata-file <file>', 'write build results as JSON (containerimage.digest, image.name, …)')
    .option('-q, --quiet', 'print only the digest')
    .addOption(new Option('--progress <mode>', 'progress output').choices(['auto', 'plain', 'tty', 'quiet']).default('auto'))
    .option('-o, --output <spec>', 'type=oci,dest=DIR[,tar=false] | type=oci-archive,dest=FILE | type=docker-archive,dest=FILE | type=registry (repeatable)', collect, [])
    .option('--push', 'push the -t names to their registries (same as --output type=registry)')
    .option('--build-context <name=value>', 'named context: NAME=oci-layout://DIR[:tag], NAME=docker-image://REF or NAME=DIR (repeatable)', collect, [])
    .option('--secret <spec>', 'id=ID,src=FILE or id=ID,env=VAR: exposed to RUN --mount=type=secret, never stored (repeatable)', collect, [])
    .option('--cache-from <spec>', 'import build cache: type=local,src=DIR | type=registry,ref=REF | oci:DIR[:tag] | REF (repeatable)', collect, [])
    .option('--cache-to <spec>', 'export the build cache: type=local,dest=DIR | type=registry,ref=REF | oci:DIR[:tag] | REF (repeatable)', collect, [])
    .option('--analyze', 'analyze the image as `kiln analyze` does (report on stderr); in CI mode (--ci rules, .dive-ci, CI=true) a failing rule exits 1 before anything is tagged or pushed')
    .option('--source-date-epoch <seconds>', 'timestamp for files, config and history (default: $SOURCE_DATE_EPOCH, else 0)');
  addRegistryFlags(cmd);
  cmd.addHelpText(
    'after',
    `
The image goes to Kiln's local store ($KILN_DATA_DIR, else $XDG_DATA_HOME/kiln); -t names it there
(kiln images, kiln push, kiln rmi). Its manifest digest is printed on stdout. Layers are reproducible:
sorted entries, numeric owners, mtimes clamped to SOURCE_DATE_EPOCH (0 when unset), fixed gzip settings.
RUN steps run in new mount/pid/uts/ipc namespaces (and a new network namespace with --network=none) over
an overlay of the stage's filesystem; needs util-linux (unshare, mount) and root or user namespaces.

Examples:
  kiln build -t localhost:5000/app:1 .
  kiln build -t localhost:5000/app:1 --push --iidfile id.txt .
  kiln build --output type=oci,dest=app.tar --build-context base=oci-layout://./base:1.0 .
  kiln build --secret id=token,env=API_TOKEN -f build/Dockerfile .
  tar -c . | kiln build -`,
  );
  cmd.action(async (context: string, flags: BuildFlags) => {
    const [{ LocalStore }, { build }, { openBuildContext }, { loadDockerignore }, { exportImage }, { openTarget }] = await Promise.all([
      import('../../builder/store/local-store.js'),
      import('../../builder/build/build.js'),
      import('../../builder/context/context.js'),
      import('../../builder/context/dockerignore.js'),
      import('../build-export.js'),
      import('../../oci/transports.js'),
    ]);
    const registry = { authfile: flags.authfile, insecure: flags.insecure };
    const outputs = flags.output.map(parseOutputFlag);
    if (flags.push) outputs.push({ type: 'registry' });
    if (outputs.some((o) => o.type === 'registry' && o.name === undefined) && flags.tag.length === 0) {
      throw new KilnError('USAGE', '--push needs at least one -t NAME to push to');
    }
    const epoch = parseEpoch(flags.sourceDateEpoch ?? process.env.SOURCE_DATE_EPOCH);
    const secrets = new Map(flags.secret.map(parseSecretFlag).map((s) => [s.id, s] as const));
    const store = await LocalStore.open();
    const dockerfileArg = flags.file ?? (context === '-' ? 'Dockerfile' : join(context, 'Dockerfile'));
    const tmpDir = context === '-' ? await store.scratch('context') : undefined;
    const ctx = await openBuildContext(context, { stdin: process.stdin, tmpDir: tmpDir ?? join(store.root, 'tmp'), dockerfile: flags.file ?? 'Dockerfile' });
    const progress = createBuildProgress(flags.quiet ? 'quiet' : flags.progress);
    // A cache that does not exist yet (the first CI run) is an empty cache, not an error.
    const cacheFrom = await Promise.all(
      flags.cacheFrom.map((v) =>
        openTarget(parseCacheFlag(v, '--cache-from'), { mode: 'read', registry }).catch((err: unknown) => {
          if (isKilnError(err, 'LAYOUT_INVALID')) return undefined;
          throw err;
        }),
      ),
    );
    const cacheTo = await Promise.all(flags.cacheTo.map((v) => openTarget(parseCacheFlag(v, '--cache-to'), { mode: 'write', registry })));
    let ok = false;
    try {
      const dockerfilePath = context === '-' && flags.file === undefined ? join(ctx.root, 'Dockerfile') : resolve(dockerfileArg);
      const text = await readFile(dockerfilePath, 'utf8').catch((err: unknown) => {
        throw new KilnError('CONTEXT_INVALID', `cannot read the Dockerfile ${dockerfileArg}: ${errorMessage(err)}`, { hint: 'name it with -f PATH' });
      });
      const ignore = ctx.ignore ?? (await loadDockerignore({ contextDir: ctx.root, dockerfile: dockerfilePath }))?.matcher;
      const result = await build({
        store,
        contextDir: ctx.root,
        ignore,
        dockerfile: { text, file: flags.file ?? 'Dockerfile' },
        buildArgs: parseBuildArgs(flags.buildArg, process.env),
        target: flags.target,
        platform: platformFlag(flags.platform),
        noCache: flags.noCache === true || (flags as { cache?: boolean }).cache === false,
        pull: flags.pull,
        labels: parseLabels(flags.label),
        namedContexts: parseBuildContexts(flags.buildContext),
        secrets,
        epoch,
        registry: { authfile: flags.authfile, insecure: flags.insecure },
        cacheFrom: cacheFrom.filter((t) => t !== undefined),
        cacheTo,
        onEvent: (e) => progress.onEvent(e),
      });
      progress.finish();
      if (flags.analyze) {
        const { analyzeTarget, DEFAULT_ANALYZE_FLAGS } = await import('./analyze.js');
        await analyzeTarget(store.target({ digest: result.digest }), result.digest, { ...DEFAULT_ANALYZE_FLAGS, quiet: true }, printMessage);
      }
      const names: string[] = [];
      for (const tag of flags.tag) names.push(await store.tag(tag, result.digest));
      await exportImage({ store, digest: result.digest, names, outputs: outputs as BuildOutput[], registry: { authfile: flags.authfile, insecure: flags.insecure }, quiet: flags.quiet === true || flags.progress === 'quiet' });
      if (flags.iidfile) await writeFile(flags.iidfile, result.digest);
      if (flags.metadataFile) {
        const meta = {
          'containerimage.digest': result.digest,
          'containerimage.config.digest': result.manifest.kind === 'manifest' ? result.manifest.parsed.config.digest : undefined,
          'containerimage.descriptor': { mediaType: result.manifest.mediaType, digest: result.digest, size: result.manifest.bytes.length },
          ...(names.length ? { 'image.name': names.join(',') } : {}),
        };
        await writeFile(flags.metadataFile, `${JSON.stringify(meta, null, 2)}\n`);
      }
      printResult(result.digest);
      ok = true;
    } finally {
      progress.finish();
      for (const t of cacheFrom) await t?.close();
      for (const t of cacheTo) await t.close({ discard: !ok });
      await ctx.cleanup();
      if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
      await store.close();
    }
  });
}

function parseEpoch(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  if (!/^\d+$/.test(value)) throw new KilnError('USAGE', `invalid SOURCE_DATE_EPOCH "${value}": expected whole seconds since 1970`);
  return Number(value);
}
