import type { Entry, LayerSpec } from './images.js';

/** A seeded generator (mulberry32: the same seed gives the same images on every machine). */
export function seeded(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** Names chosen so paths collide across layers and whiteouts (`.wh.x`) and opaque markers hit real targets. */
const NAMES = ['a', 'b', 'c', 'd', 'Z', '.wh.a', '.wh.b', '.wh.d', '.wh..wh..opq', 'e'];

/** A random image of 1–`maxLayers` layers, each of 1–`maxEntries` files, directories, symlinks, hard links or whiteouts. */
export function randomImage(rnd: (n: number) => number, maxLayers = 4, maxEntries = 8): LayerSpec[] {
  return Array.from({ length: 1 + rnd(maxLayers) }, () => {
    const entries: Entry[] = [];
    for (let i = 0, n = 1 + rnd(maxEntries); i < n; i++) {
      const t = rnd(10);
      const name = Array.from({ length: 1 + rnd(1 + rnd(3)) }, () => NAMES[rnd(NAMES.length)] as string).join('/');
      if (t < 5) entries.push({ name, size: rnd(4) === 0 ? 0 : 1 + rnd(1000) });
      else if (t < 8) entries.push({ name: `${name}/`, type: 'directory' });
      else if (t < 9) entries.push({ name, type: 'symlink', linkname: 'x' });
      else entries.push({ name, type: 'link', linkname: 'a' });
    }
    return { entries };
  });
}
