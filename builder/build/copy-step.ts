import { KilnError, errorMessage } from '../../oci/errors.js';
import { digestCopyInputs, planCopy, planCopyDeferred, type PlanCopyOptions } from '../context/copy-plan.js';
import type { AddInstruction, CopyInstruction } from '../dockerfile/instructions.js';
import { heredocBody } from '../dockerfile/heredoc.js';
import { expandWord } from '../dockerfile/shell-lex.js';
import { resolveUser } from '../executor/user.js';
import { cacheKey } from './cache-key.js';
import type { LayerEntry } from '../layer/entry.js';
import { storeLayer, type FreshLayer } from './layer-store.js';
import { expand } from './meta-steps.js';
import type { StageState } from './stage-state.js';
import type { SourceTree, StepContext } from './step-context.js';

/** Runs (or takes from the cache) a COPY or ADD; returns the history entry's `created_by`. */
export async function copyStep(ctx: StepContext, state: StageState, ins: CopyInstruction | AddInstruction): Promise<{ createdBy: string; emptyLayer: boolean }> {
  const where = `${ctx.file}:${ins.location.line}`;
  const x = (w: string): string => expand(state, w, { escape: ctx.escape, where });
  const patterns = ins.sources.map(x);
  const dest = x(ins.dest);
  const chown = ins.chown === undefined ? undefined : x(ins.chown);
  const chmod = ins.chmod === undefined ? undefined : x(ins.chmod);
  const excludes = ins.excludes.map(x);
  // BuildKit expands heredoc bodies raw (a script's quotes are its own), with `\` as escape whatever the directive.
  const body = (text: string): string => {
    try {
      return expandWord(text, state.expansionEnv(), { skipQuotes: true });
    } catch (err) {
      throw new KilnError('DOCKERFILE_INVALID', `${where}: heredoc: ${errorMessage(err)}`, { cause: err });
    }
  };
  const inline = ins.heredocs.map((h) => ({ name: h.name, content: Buffer.from(h.expand ? body(heredocBody(h)) : heredocBody(h)) }));
  const from = ins.kind === 'COPY' ? ins.from : undefined;
  const tree = await ctx.copySource(from, where);
  const workdir = state.config.WorkingDir || '/';
  const checksum = ins.kind === 'ADD' && ins.checksum !== undefined ? x(ins.checksum) : undefined;

  // Heredoc bodies, downloads and unpacked archives live only as long as the step: the layer is written, and the
  // rootfs updated (while the layer is written, before this removal), from them.
  const scratch = await ctx.store.scratch('copy');
  try {
    return await copyWith(ctx, state, ins, { where, patterns, dest, chown, chmod, excludes, inline, tree, workdir, checksum, scratch });
  } finally {
    await ctx.removeScratch(scratch);
  }
}

/** The expanded arguments of a COPY/ADD and its scratch directory. */
interface CopyArgs {
  where: string;
  patterns: string[];
  dest: string;
  chown: string | undefined;
  chmod: string | undefined;
  excludes: string[];
  inline: { name: string; content: Buffer }[];
  tree: SourceTree;
  workdir: string;
  checksum: string | undefined;
  scratch: string;
}

async function copyWith(ctx: StepContext, state: StageState, ins: CopyInstruction | AddInstruction, a: CopyArgs): Promise<{ createdBy: string; emptyLayer: boolean }> {
  const { where, patterns, dest, chown, chmod, excludes, inline, tree, workdir, checksum } = a;
  // A stage or image source is only unpacked when the step has to run: its key stands for its content.
  const base: Omit<PlanCopyOptions, 'rootfs' | 'chown' | 'source'> = {
    patterns,
    inline,
    dest,
    workdir,
    ...(chmod !== undefined ? { chmod } : {}),
    parents: ins.kind === 'COPY' ? ins.parents : false,
    excludes,
    link: ins.link,
    tmpDir: a.scratch,
    ...(ins.kind === 'ADD' ? { add: { tmpDir: a.scratch, ...(checksum !== undefined ? { checksum } : {}), epoch: ctx.epoch, unpack: ins.unpack } } : {}),
  };
  const flags = { chown: chown ?? null, chmod: chmod ?? null, parents: base.parents, excludes, link: ins.link, checksum: checksum ?? null, unpack: ins.kind === 'ADD' ? (ins.unpack ?? null) : null };
  const parent = state.fsKey;
  const keyOf = (inputs: string): string => cacheKey(parent, [ins.kind, patterns, inline.map((i) => [i.name, i.content.toString('base64')]), dest, workdir, flags, inputs]);
  const planOptions = async (rootfs: string): Promise<PlanCopyOptions> => {
    const owner = chown === undefined ? undefined : await resolveUser(rootfs, chown);
    return { ...base, source: await tree.open(), rootfs, ...(owner ? { chown: { uid: owner.uid, gid: owner.gid } } : {}) };
  };
  // The rootfs takes the change while the layer is written, not after (layerStep's addLayer then skips it).
  const store = async (rootfs: string, entries: LayerEntry[], contentDigests?: Map<string, string>): Promise<FreshLayer | undefined> =>
    entries.length === 0 ? undefined : await storeLayer(ctx.store, entries, ctx.epoch, { applyTo: { rootfs, name: `stage ${state.name}` }, ...(contentDigests ? { contentDigests } : {}) });

  if (tree.key === undefined && !(await ctx.mayHit())) {
    // No lookup can hit, so the key can wait: the layer is written first (the rootfs updated meanwhile) and the
    // key made from the digests of the bytes it read, rather than from a first full read of every source.
    const layer = await ctx.unkeyedLayerStep(state, ins.original, async (rootfs) => {
      try {
        const plan = await planCopyDeferred(await planOptions(rootfs));
        const digests = new Map<string, string>();
        const stored = await store(rootfs, plan.entries, digests);
        return { key: keyOf(await plan.lookupDigest(digests)), layer: stored };
      } catch (err) {
        throw located(err, where, ins.original);
      }
    });
    return { createdBy: `${ins.original} # kiln`, emptyLayer: layer === undefined };
  }

  let inputs: string;
  try {
    inputs = tree.key ?? (await digestCopyInputs({ ...base, source: await tree.open() }));
  } catch (err) {
    throw located(err, where, ins.original);
  }
  const layer = await ctx.layerStep(state, keyOf(inputs), ins.original, async (rootfs) => {
    try {
      return await store(rootfs, (await planCopy(await planOptions(rootfs))).entries);
    } catch (err) {
      throw located(err, where, ins.original);
    }
  });
  return { createdBy: `${ins.original} # kiln`, emptyLayer: layer === undefined };
}

/** Prefixes a step error with the Dockerfile position when it has none. */
function located(err: unknown, where: string, original: string): Error {
  if (err instanceof KilnError) {
    if (err.message.startsWith(where)) return err;
    const kind = original.split(/\s+/)[0] ?? '';
    // The planner already says "COPY failed: …" for most errors: say it once.
    const message = err.message.startsWith(`${kind.toUpperCase()} failed`) ? err.message : `${kind} failed: ${err.message}`;
    return new KilnError(err.code, `${where}: ${message}`, { cause: err, hint: err.hint, detail: err.detail });
  }
  return new KilnError('BUILD_FAILED', `${where}: ${errorMessage(err)}`, { cause: err });
}
