import { join } from 'node:path';
import { expect } from 'vitest';
import { listTree, mountsUnder, readLayoutImage, type BuildWorkspace } from '../../support/build-fixture.js';
import type { KilnRun } from '../../support/kiln.js';

/** One member of a layer tar, as far as the build tests look at it. */
export interface TarMember {
  name: string;
  /** '0' file, '1' hard link, '2' symlink, '5' directory. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string;
  content: Buffer;
}

/** The members of an uncompressed tar (ustar with pax path/linkpath records: what Kiln writes). */
export function tarMembers(tar: Buffer): TarMember[] {
  const out: TarMember[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (s: number, n: number): string => header.subarray(s, s + n).toString('utf8').replace(/\0.*$/s, '');
    const octal = (s: number, n: number): number => Number.parseInt(field(s, n).trim() || '0', 8);
    const size = octal(124, 12);
    const type = field(156, 1) || '0';
    const body = tar.subarray(off + 512, off + 512 + size);
    if (type === 'x') {
      pax = parsePax(body);
    } else if (type !== 'g') {
      const prefix = field(345, 155);
      const name = pax.path ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
      out.push({ name, type, mode: octal(100, 8), uid: Number(pax.uid ?? octal(108, 8)), gid: Number(pax.gid ?? octal(116, 8)), linkname: pax.linkpath ?? field(157, 100), content: Buffer.from(body) });
      pax = {};
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function parsePax(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let text = body.toString('utf8');
  while (text.length > 0) {
    const space = text.indexOf(' ');
    const len = Number(text.slice(0, space));
    if (!(len > 0)) break;
    const record = text.slice(space + 1, len - 1);
    const eq = record.indexOf('=');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    text = text.slice(len);
  }
  return out;
}

/** A built image read back from its OCI layout, with lookups over its layers. */
export interface BuiltImage {
  run: KilnRun;
  digest: string;
  config: Record<string, unknown>;
  /** The container config (`config.config`). */
  cc: Record<string, unknown>;
  history: { created_by: string; empty_layer?: boolean; comment?: string }[];
  layers: TarMember[][];
  layerBytes: Buffer[];
  configBytes: Buffer;
  /** The member at `path` in the topmost layer that has it (no whiteout handling: tests look at fresh files). */
  file(path: string): TarMember | undefined;
  /** The content of `path` as text; fails the test when no layer has it. */
  text(path: string): string;
}

let outputs = 0;

/** Builds `args` (a context dir last) into a fresh OCI layout and reads the image back; fails on a non-zero exit. */
export async function buildImage(ws: BuildWorkspace, args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<BuiltImage> {
  const dest = join(ws.dir, `out-${++outputs}`);
  const run = await ws.build(['--output', `type=oci,dest=${dest},tar=false`, ...args], options);
  if (run.code !== 0) throw new Error(`kiln build ${args.join(' ')} exited ${run.code}:\n${run.stderr}`);
  const image = await readLayoutImage(dest);
  const layers = image.layers.map(tarMembers);
  const find = (path: string): TarMember | undefined => {
    for (let i = layers.length - 1; i >= 0; i--) {
      const hit = layers[i]!.find((m) => m.name.replace(/\/$/, '') === path);
      if (hit) return hit;
    }
    return undefined;
  };
  return {
    run,
    digest: run.stdout.trim(),
    config: image.config,
    cc: (image.config.config ?? {}) as Record<string, unknown>,
    history: (image.config.history ?? []) as BuiltImage['history'],
    layers,
    layerBytes: image.layers,
    configBytes: image.configBytes,
    file: find,
    text(path) {
      const hit = find(path);
      expect(hit, `${path} in some layer`).toBeDefined();
      return hit!.content.toString('utf8');
    },
  };
}

/** Writes a context with `files` (a `Dockerfile` among them) and builds it; see buildImage. */
export async function buildFiles(ws: BuildWorkspace, files: Record<string, string>, args: string[] = [], options: { env?: NodeJS.ProcessEnv } = {}): Promise<BuiltImage> {
  const ctx = await ws.context(files);
  return buildImage(ws, [...args, ctx], options);
}

/** The history entries an image's own Dockerfile added (the base's are dropped). */
export function ownHistory(image: BuiltImage): BuiltImage['history'] {
  return image.history.slice(1);
}

/** The `[stage] STEP` lines of plain progress output. */
export function stepLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /^#\d+ \[/.test(l));
}

/** Image names and digests of the local store (`kiln images --format json`). */
export async function storedImages(ws: BuildWorkspace): Promise<{ name: string; digest: string }[]> {
  const r = await ws.kiln(['images', '--format', 'json']);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { name: string; digest: string }[]).map(({ name, digest }) => ({ name, digest }));
}

/** Asserts a failed build left nothing: no new store names, no mounts under the workspace, an empty tmp dir. */
export async function expectNothingLeft(ws: BuildWorkspace, before: { name: string; digest: string }[]): Promise<void> {
  expect(await storedImages(ws)).toEqual(before);
  expect(await mountsUnder(ws.dir)).toEqual([]);
  expect(await listTree(join(ws.dataDir, 'tmp'))).toEqual([]);
}

/** This host's architecture as OCI names it, and another one RUN cannot execute here (no emulation). */
export const HOST_ARCH = process.arch === 'x64' ? 'amd64' : process.arch;
export const OTHER_ARCH = HOST_ARCH === 'arm64' ? 'amd64' : 'arm64';
