import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { KilnError, errorMessage } from '../../oci/errors.js';
import type { RunInstruction } from '../dockerfile/instructions.js';
import { decodeRunMount, type RunMount as DockerfileMount } from '../dockerfile/run-mount.js';
import { heredocBody } from '../dockerfile/heredoc.js';
import type { RunMount } from '../executor/types.js';
import { runInNamespaces } from '../executor/run.js';
import { resolveUser } from '../executor/user.js';
import { diffOverlayUpper } from '../rootfs/overlay-diff.js';
import { commandArgv, expand } from './meta-steps.js';
import type { StageState } from './stage-state.js';
import type { StepContext } from './step-context.js';
import { cacheKey } from './cache-key.js';
import { storeLayer } from './layer-store.js';
import type { CacheMountLease } from './cache-mounts.js';

/** How many of a failing RUN's last output lines its error message quotes (all are in the error's detail). */
const LAST_LINES = 6;

/** A RUN's mounts resolved to host paths, their part of the cache key, and env-exposed secrets. */
interface ResolvedMounts {
  /** Bind mounts from stages are opened (unpacked) only when the step runs: a factory stands in for them. */
  mounts: Array<RunMount | (() => Promise<RunMount>)>;
  keyParts: unknown[];
  secretEnv: string[];
  /** Cache mounts held by the running RUN: released when it ends. */
  leases: CacheMountLease[];
}

/** Runs (or takes from the cache) one RUN; returns the history `created_by`. */
export async function runStep(ctx: StepContext, state: StageState, ins: RunInstruction): Promise<{ createdBy: string; emptyLayer: boolean }> {
  const where = `${ctx.file}:${ins.location.line}`;
  const { argv, scripts } = runArgv(state, ins);
  const { env, keyed } = runEnv(ctx, state);
  const cwd = state.config.WorkingDir || '/';
  const user = state.config.User || '0';
  const network = ins.network ?? 'default';
  const resolved = await resolveMounts(ctx, state, ins, where);
  const argsUsed = [...state.args].filter(([k, v]) => v !== undefined && !ctx.proxyArgs.has(k)).map(([k, v]) => `${k}=${v ?? ''}`);
  const createdBy = `RUN ${argsUsed.length ? `|${argsUsed.length} ${argsUsed.join(' ')} ` : ''}${argv.join(' ')}`;
  const key = cacheKey(state.fsKey, ['RUN', argv, scripts.map((s) => s.content), keyed, cwd, user, network, resolved.keyParts]);

  // The scratch (upper dir, heredoc scripts) outlives produce: layerStep applies the change by moving files out of
  // the upper, which must still be there.
  const scratches: string[] = [];
  try {
    const layer = await ctx.layerStep(state, key, `RUN ${ins.original.replace(/^RUN\s+/i, '')}`, async (rootfs, stepId) => {
      const scratch = await ctx.store.scratch('run');
      scratches.push(scratch);
      const upper = join(scratch, 'upper');
      await mkdir(upper);
      // Cache mounts are leased while the RUN runs (sharing=locked waits here), released whatever happens.
      let result: Awaited<ReturnType<typeof runInNamespaces>>;
      try {
        const mounts = await Promise.all(resolved.mounts.map((m) => (typeof m === 'function' ? m() : m)));
        for (const s of scripts) {
          const file = join(scratch, `heredoc-${s.name}`);
          await writeFile(file, s.content, { mode: 0o755 });
          mounts.push({ type: 'bind', source: file, target: `/dev/pipes/${s.name}`, readonly: true });
        }
        const who = await resolveUser(rootfs, user).catch((err: unknown) => {
          throw new KilnError('BUILD_FAILED', `${where}: USER ${user}: ${errorMessage(err)}`, { cause: err });
        });
        result = await runInNamespaces({
          rootfs,
          upper,
          argv,
          env: [...env, ...resolved.secretEnv],
          cwd,
          user: who,
          network,
          mounts,
          onOutput: (chunk) => ctx.emit({ type: 'output', id: stepId, chunk }),
          signal: ctx.signal,
        });
      } finally {
        for (const lease of resolved.leases.splice(0)) lease.release();
      }
      if (result.exitCode !== 0) {
        const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
        // One line (the CLI prints only the first): the last few output lines, JSON-quoted so newlines stay visible.
        const tail = result.lastLines.length ? `; last output: ${JSON.stringify(result.lastLines.slice(-LAST_LINES).join('\n'))}` : '';
        throw new KilnError('BUILD_FAILED', `${where}: RUN ${ins.original.replace(/^RUN\s+/i, '')} ${how}${tail}`, {
          detail: { exitCode: result.exitCode, lastLines: result.lastLines },
        });
      }
      const entries = await diffOverlayUpper({ upper });
      if (entries.length === 0) return undefined;
      // Nothing reads the upper after the change is applied: its files may be moved into the rootfs.
      return await storeLayer(ctx.store, entries, ctx.epoch, { move: true });
    });
    return { createdBy, emptyLayer: layer === undefined };
  } finally {
    for (const dir of scratches) await ctx.removeScratch(dir);
  }
}

/** The argv a RUN executes; a heredoc that is the whole command runs as a script (shebang honoured) as BuildKit does. */
function runArgv(state: StageState, ins: RunInstruction): { argv: string[]; scripts: { name: string; content: string }[] } {
  const docs = ins.heredocs;
  const first = docs[0];
  if (ins.command.form === 'exec' || first === undefined) return { argv: commandArgv(state, ins.command), scripts: [] };
  const line = ins.command.text.trim();
  const content = heredocBody(first);
  if (docs.length === 1 && /^\d*<<-?\s*["']?[^<]+["']?$/.test(line)) {
    if (content.startsWith('#!')) return { argv: [`/dev/pipes/${safeName(first.name)}`], scripts: [{ name: safeName(first.name), content }] };
    return { argv: [...(state.config.Shell ?? ['/bin/sh', '-c']), content], scripts: [] };
  }
  // Anything else (`RUN <<EOF bash`, `cat <<EOF > f`): the shell reads the heredocs itself, as written.
  const text = [line, ...docs.map((d) => `${d.content}${d.name}`)].join('\n');
  return { argv: [...(state.config.Shell ?? ['/bin/sh', '-c']), text], scripts: [] };
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_') || 'script';
}

/**
 * RUN's environment: the image's Env, then the stage's ARGs (ENV wins), then proxy variables from --build-arg;
 * `keyed` is the same without undeclared proxies, which (as in BuildKit) do not change the cache key.
 */
function runEnv(ctx: StepContext, state: StageState): { env: string[]; keyed: string[] } {
  const env = state.envMap();
  for (const [k, v] of state.args) if (v !== undefined && !env.has(k)) env.set(k, v);
  const keyed = [...env].map(([k, v]) => `${k}=${v}`);
  for (const [k, v] of ctx.proxyEnv) if (!env.has(k)) env.set(k, v);
  return { env: [...env].map(([k, v]) => `${k}=${v}`), keyed };
}

async function resolveMounts(ctx: StepContext, state: StageState, ins: RunInstruction, where: string): Promise<ResolvedMounts> {
  const out: ResolvedMounts = { mounts: [], keyParts: [], secretEnv: [], leases: [] };
  for (const raw of ins.mounts) {
    let m: DockerfileMount = raw;
    if (raw.hasVariables) {
      try {
        m = decodeRunMount(raw.spec, (w) => expand(state, w, { escape: ctx.escape, where }));
      } catch (err) {
        throw new KilnError('DOCKERFILE_INVALID', `${where}: --mount=${raw.spec}: ${errorMessage(err)}`, { cause: err });
      }
    }
    const target = m.target === undefined ? undefined : posix.resolve(state.config.WorkingDir || '/', m.target);
    switch (m.type) {
      case 'cache': {
        if (!target) throw new KilnError('DOCKERFILE_INVALID', `${where}: --mount=type=cache needs target=`);
        const id = m.id ?? target;
        const base = ctx.store.cacheMountDir(createHash('sha256').update(id).digest('hex'));
        const sharing = m.sharing ?? 'shared';
        const readonly = m.readonly;
        // Acquired when the RUN runs (a locked cache waits for the RUN holding it), released when it ends.
        out.mounts.push(async () => {
          const lease = await ctx.cacheMounts.acquire(base, sharing, { mode: m.mode ?? 0o755, uid: m.uid ?? 0, gid: m.gid ?? 0 });
          out.leases.push(lease);
          return { type: 'cache', source: lease.dir, target, readonly };
        });
        // Cache contents are deliberately not part of the key: they are a cache, not an input.
        out.keyParts.push(['cache', id, target, m.readonly]);
        break;
      }
      case 'secret': {
        const id = m.id ?? (target ? posix.basename(target) : undefined);
        if (!id) throw new KilnError('DOCKERFILE_INVALID', `${where}: --mount=type=secret needs id= or target=`);
        const file = await ctx.secretFile(id);
        if (file === undefined) {
          if (m.required) throw new KilnError('BUILD_FAILED', `${where}: secret "${id}" is required but was not given`, { hint: `pass --secret id=${id},src=FILE` });
          break;
        }
        if (m.env !== undefined) out.secretEnv.push(`${m.env}=${(await readFile(file, 'utf8')).replace(/\n$/, '')}`);
        if (m.env === undefined || target !== undefined) {
          out.mounts.push({ type: 'secret', source: file, target: target ?? `/run/secrets/${id}`, mode: m.mode ?? 0o400, uid: m.uid ?? 0, gid: m.gid ?? 0 });
        }
        // Only the id and where it shows: the value never reaches a key, a layer, the config or the history.
        out.keyParts.push(['secret', id, target ?? null, m.env ?? null]);
        break;
      }
      case 'bind': {
        if (!target) throw new KilnError('DOCKERFILE_INVALID', `${where}: --mount=type=bind needs target=`);
        const from = await ctx.mountSource(m.from, m.source ?? '/', !m.readonly, where);
        out.mounts.push(async () => ({ type: 'bind', source: await from.open(), target, readonly: m.readonly }));
        out.keyParts.push(['bind', from.key, m.source ?? '/', target, m.readonly]);
        break;
      }
      case 'tmpfs': {
        if (!target) throw new KilnError('DOCKERFILE_INVALID', `${where}: --mount=type=tmpfs needs target=`);
        out.mounts.push({ type: 'tmpfs', target, ...(m.size !== undefined ? { size: m.size } : {}) });
        out.keyParts.push(['tmpfs', target, m.size ?? null]);
        break;
      }
      case 'ssh':
        throw new KilnError('BUILD_FAILED', `${where}: --mount=type=ssh is not supported by kiln build`, { hint: 'use a --secret for a key file instead' });
    }
  }
  return out;
}
