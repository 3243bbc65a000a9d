import { KilnError } from '../../oci/errors.js';
import { formatPlatform, hostPlatform, normalizePlatform, parsePlatform } from '../../oci/platform.js';
import type { Platform } from '../../oci/descriptor.js';
import { parseDockerfile, parseInstructions, type Stage } from '../dockerfile/parser.js';
import type { Instruction } from '../dockerfile/instructions.js';
import { expandWord } from '../dockerfile/shell-lex.js';
import { platformArgs, PROXY_ARGS, proxyEnv } from '../dockerfile/platform-args.js';
import { resolveBaseImage, scratchImage, type BaseImage, type ImageSources } from './base-image.js';
import { BuildSession } from './session.js';
import { exportCache, RemoteCache } from '../store/cache-transfer.js';
import { copyStep } from './copy-step.js';
import { writeImage } from './image-writer.js';
import { applyMeta, expand, nextWorkdir, type MetaInstruction } from './meta-steps.js';
import type { BuildOptions, BuildResult } from './options.js';
import { runStep } from './run-step.js';
import { fromImage, neededStages, stageRef, targetStage } from './stage-graph.js';
import { StageState } from './stage-state.js';
import { workdirStep } from './workdir-step.js';

const HISTORY_COMMENT = 'kiln.dockerfile.v0';

/**
 * Builds the Dockerfile's target stage into the local store: only the stages it needs, independent stages in
 * parallel, every file-changing step through the cache. The image is stored, not named: the caller tags or
 * exports it. Throws KilnError; leaves no mounts or scratch directories behind either way.
 */
export async function build(options: BuildOptions): Promise<BuildResult> {
  const df = parseDockerfile(options.dockerfile.text, { file: options.dockerfile.file });
  const escape = df.directives.escape;
  const buildArgs = options.buildArgs ?? new Map<string, string>();
  const host = normalizePlatform(hostPlatform());
  const target = normalizePlatform(options.platform ?? host);
  const epoch = options.epoch ?? 0;
  // RFC 3339 without fractions, as Go's time.Time marshals a whole second (what BuildKit writes).
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const finalStage = targetStage(df, options.target);

  // Global scope: the automatic platform args, then the ARGs before the first FROM (build args override defaults).
  const globals = platformArgs(host, target, { targetStage: finalStage.name, buildArgs });
  const declaredGlobals = new Map<string, string | undefined>();
  for (const ins of df.globalArgs) {
    for (const a of ins.args) {
      const value = buildArgs.get(a.key) ?? (a.value === undefined ? undefined : expandWord(a.value, globals, { escape }));
      declaredGlobals.set(a.key, value);
      if (value !== undefined) globals.set(a.key, value);
    }
  }

  const session = new BuildSession(options, df.file, escape, epoch, PROXY_ARGS, proxyEnv(buildArgs));
  const sources: ImageSources = {
    store: options.store,
    registry: options.registry,
    namedImages: new Map([...(options.namedContexts ?? [])].filter(([, v]) => v.includes('://'))),
    pull: options.pull ?? false,
    onProgress: (event) => session.emit({ type: 'pull', event }),
  };
  const consumed = new Set<string>();
  const stages = new Map<number, Promise<StageState>>();

  const buildStage = async (stage: Stage): Promise<StageState> => {
    const label = stage.name ?? `stage-${stage.index}`;
    const where = `${df.file}:${stage.from.location.line}`;
    const image = fromImage(stage, globals, escape);
    const platform = stage.from.platform === undefined ? target : parseStagePlatform(expandWord(stage.from.platform, globals, { escape }), where);
    const parent = stageRef(df, image, stage.index);
    let base: BaseImage;
    let parentState: StageState | undefined;
    if (parent) {
      parentState = await stages.get(parent.index)!;
      base = { name: image, config: parentState.imageConfig(created), layers: [...parentState.layers] };
    } else if (image.toLowerCase() === 'scratch') {
      base = scratchImage(platform);
    } else {
      base = await resolveBaseImage(image, platform, sources);
    }
    const state = new StageState(label, base, platform);
    if (parentState) state.fsKey = parentState.fsKey;
    session.track(state);
    const cmdSet = { value: false };
    const triggers = base.config.config?.OnBuild ?? [];
    const onbuild: Instruction[] = triggers.length ? parseInstructions(triggers.join('\n'), { file: `${image} ONBUILD` }) : [];
    if (triggers.length) delete state.config.OnBuild;
    for (const ins of [...onbuild, ...stage.instructions]) {
      await dispatch(state, ins, cmdSet, platform, stage);
    }
    return state;
  };

  const dispatch = async (state: StageState, ins: Instruction, cmdSet: { value: boolean }, platform: Platform, stage: Stage): Promise<void> => {
    const where = `${df.file}:${ins.location.line}:${ins.location.column}`;
    const record = (createdBy: string, emptyLayer: boolean): void => {
      state.history.push({ created, created_by: createdBy, comment: HISTORY_COMMENT, ...(emptyLayer ? { empty_layer: true } : {}) });
    };
    switch (ins.kind) {
      case 'FROM':
        throw new KilnError('DOCKERFILE_INVALID', `${where}: FROM inside an ONBUILD trigger is not allowed`);
      case 'ARG':
        for (const a of ins.args) {
          consumed.add(a.key);
          const auto = globals.get(a.key);
          const fromGlobal = declaredGlobals.has(a.key) ? declaredGlobals.get(a.key) : isAutomatic(a.key) ? auto : undefined;
          // BuildKit: a --build-arg wins, then the stage's own default, and only without one the global value.
          const value = buildArgs.get(a.key) ?? (a.value === undefined ? fromGlobal : expand(state, a.value, { escape, where }));
          state.args.set(a.key, value);
        }
        return;
      case 'RUN': {
        if (platform.architecture !== host.architecture || platform.os !== host.os) {
          throw new KilnError('PLATFORM_UNKNOWN', `${where}: cannot RUN for ${formatPlatform(platform)} on this ${formatPlatform(host)} host (no emulation)`, {
            hint: `build for ${formatPlatform(host)}, or use FROM --platform=$BUILDPLATFORM for stages that run commands`,
          });
        }
        const r = await runStep(session, state, ins);
        record(r.createdBy, r.emptyLayer);
        return;
      }
      case 'COPY':
      case 'ADD': {
        const r = await copyStep(session, state, ins);
        record(r.createdBy, r.emptyLayer);
        return;
      }
      case 'WORKDIR': {
        const path = nextWorkdir(state.config.WorkingDir, expand(state, ins.path, { escape, where }));
        state.config.WorkingDir = path;
        const made = await workdirStep(session, state, path);
        record(`WORKDIR ${path}`, !made);
        return;
      }
      default: {
        void stage;
        record(applyMeta(state, ins as MetaInstruction, { escape, cmdSet, where }), true);
      }
    }
  };

  try {
    session.remoteCaches = await Promise.all((options.cacheFrom ?? []).map((t) => RemoteCache.open(t)));
    const order = neededStages(df, finalStage, globals, escape);
    // Before any stage starts: a stage's first step may already read another stage (COPY --from).
    session.bindStages(df, stages, sources, target);
    for (const stage of order) {
      // Started in dependency order; each awaits only the stages it reads, so independent stages overlap.
      const job = buildStage(stage);
      job.catch(() => undefined);
      stages.set(stage.index, job);
    }
    const state = await stages.get(finalStage.index)!;
    await Promise.all(stages.values());
    for (const [k, v] of Object.entries(options.labels ?? {})) {
      state.config.Labels = { ...(state.config.Labels ?? {}), [k]: v };
    }
    const unused = [...buildArgs.keys()].filter((k) => !consumed.has(k) && !declaredGlobals.has(k) && !PROXY_ARGS.has(k) && !isAutomatic(k));
    if (unused.length) session.emit({ type: 'warning', message: `build-args not consumed by any ARG: ${unused.join(', ')}` });
    const config = state.imageConfig(created);
    const manifest = await writeImage(options.store, config, state.layers);
    for (const target of options.cacheTo ?? []) await exportCache(options.store, session.usedSteps, target);
    return { manifest, digest: manifest.digest, config, steps: session.counts() };
  } finally {
    await session.close();
  }
}

function parseStagePlatform(text: string, where: string): Platform {
  try {
    return normalizePlatform(parsePlatform(text));
  } catch (err) {
    throw new KilnError('DOCKERFILE_INVALID', `${where}: FROM --platform=${text}: expected os/arch[/variant]`, { cause: err });
  }
}

function isAutomatic(name: string): boolean {
  return /^(BUILD|TARGET)(PLATFORM|OS|OSVERSION|ARCH|VARIANT|STAGE)$/.test(name);
}
