import { execFile } from 'node:child_process';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyze } from '../../analyzer/analyze.js';
import { openTarget } from '../../oci/transports.js';
import { requirePeer } from '../support/peers.js';
import { workDir, writeImage, type Entry, type LayerSpec } from './images.js';
import { seeded } from './random-layers.js';

// The corrected block claims "what survives an overlay". umoci applies layers (whiteouts, opaque directories)
// exactly as the image-spec says; the bytes of regular files in its rootfs must equal size − corrected waste.

const run = promisify(execFile);
let work: Awaited<ReturnType<typeof workDir>>;
beforeAll(async () => {
  work = await workDir();
});
afterAll(async () => {
  await work.dispose();
});

async function regularFileBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) {
    const st = await lstat(join(dir, name));
    if (st.isDirectory()) total += await regularFileBytes(join(dir, name));
    else if (st.isFile()) total += st.size;
  }
  return total;
}

const rnd = seeded(20240601);
const NAMES = ['a', 'b', 'c', 'd'];

/** A random layer over a small namespace so paths collide: files, directories, whiteouts and opaque markers. */
function randomLayer(first: boolean): LayerSpec {
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (let i = 0, n = 1 + rnd(10); i < n; i++) {
    const parts = Array.from({ length: 1 + rnd(3) }, () => NAMES[rnd(NAMES.length)] as string);
    const path = parts.join('/');
    const parent = parts.slice(0, -1).join('/');
    // Each path once per layer, and never a file where this layer already put a directory (tar order matters).
    if ([...seen].some((s) => s === path || s.startsWith(`${path}/`) || path.startsWith(`${s}/`))) continue;
    seen.add(path);
    for (let p = 1; p < parts.length; p++) entries.push({ name: `${parts.slice(0, p).join('/')}/`, type: 'directory' });
    const kind = rnd(10);
    if (!first && kind === 0) entries.push({ name: parent ? `${parent}/.wh.${parts.at(-1)}` : `.wh.${parts.at(-1)}` });
    else if (!first && kind === 1 && parent) entries.push({ name: `${parent}/.wh..wh..opq` });
    else if (kind < 4) entries.push({ name: `${path}/`, type: 'directory' });
    else entries.push({ name: path, size: 1 + rnd(500) });
  }
  return { entries };
}

describe('corrected block against a real overlay (umoci unpack)', () => {
  it('size − corrected waste = bytes of regular files in the unpacked rootfs', async () => {
    const umoci = requirePeer('umoci', 'umoci');
    for (let round = 0; round < 40; round++) {
      const layers = Array.from({ length: 2 + rnd(3) }, (_, i) => randomLayer(i === 0));
      const { spec } = await writeImage(work.dir, `img${round}`, layers);
      const target = await openTarget(spec, { mode: 'read' });
      const result = await analyze({ target }).finally(() => target.close());
      const bundle = join(work.dir, `bundle${round}`);
      await run(umoci, ['unpack', '--rootless', '--image', `${join(work.dir, `img${round}`)}:t`, bundle]);
      const survived = await regularFileBytes(join(bundle, 'rootfs'));
      expect({ round, survived }).toEqual({ round, survived: result.corrected.sizeBytes - result.corrected.wastedBytes });
    }
  });
});
