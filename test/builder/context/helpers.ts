import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LayerEntry } from '../../../builder/layer/entry.js';

/** A tree spec: path → file content, `{ dir }`, or `{ link }`; modes optional. */
export type Spec = Record<string, string | { content: string; mode: number } | { dir: true; mode?: number } | { link: string }>;

/** Writes `spec` under `root` (parents created as needed). */
export async function makeTree(root: string, spec: Spec): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [rel, v] of Object.entries(spec)) {
    const abs = join(root, rel);
    await mkdir(dirname(abs), { recursive: true });
    if (typeof v === 'string') await writeFile(abs, v, { mode: 0o644 });
    else if ('content' in v) await writeFile(abs, v.content, { mode: v.mode });
    else if ('dir' in v) await mkdir(abs, { recursive: true, mode: v.mode ?? 0o755 });
    else await symlink(v.link, abs);
  }
}

/** A fresh temp dir and its remover. */
export async function tempDir(prefix: string): Promise<{ dir: string; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, done: () => rm(dir, { recursive: true, force: true }) };
}

/** Entries as comparable summaries: 'path type mode [uid:gid] [content|->link]'. */
export async function summary(entries: LayerEntry[]): Promise<string[]> {
  const out: string[] = [];
  for (const e of entries) {
    if (e.type === 'whiteout' || e.type === 'opaque') {
      out.push(`${e.path} ${e.type}`);
      continue;
    }
    let tail = '';
    if (e.type === 'file') tail = ` ${await readFile(e.source, 'utf8')}`;
    if (e.type === 'symlink' || e.type === 'hardlink') tail = ` -> ${e.linkname}`;
    out.push(`${e.path} ${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}${tail}`);
  }
  return out;
}

/** Sets an old mtime on a path (seconds). */
export async function age(path: string, seconds: number): Promise<void> {
  await utimes(path, seconds, seconds);
}
