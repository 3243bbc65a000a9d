import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { goFormatV } from '../../analyzer/go-format.js';
import { analyzeLayers } from './images.js';
import { randomImage, seeded } from './random-layers.js';

// fixtures/dive-parity.json holds what wagoodman/dive v0.13.1's own code (its dive/filetree package and the layer
// reading of image_archive.go, built with Go and run on the same tars) printed for random images made by
// random-layers.ts: efficiency and user% as Go's %v prints them, sizes, wasted bytes and the inefficient files in
// dive's order. Regenerating the same images must give the same figures.

interface Recorded {
  sets: Array<[seed: number, rounds: number, maxLayers: number, maxEntries: number]>;
  images: Array<{ seed: number; round: number; dive: Record<string, unknown> }>;
}

// dive's Go sort is unstable: among files of equal size its order is arbitrary, so both sides are compared with
// ties ordered by path (sizes and the largest-first order are compared exactly).
type Inefficient = { path: string; sizeBytes?: number };
function byTies<T extends Inefficient>(list: T[]): T[] {
  const size = (x: T): number => x.sizeBytes ?? 0;
  return [...list].sort((a, b) => size(b) - size(a) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const recorded = JSON.parse(readFileSync(new URL('./fixtures/dive-parity.json', import.meta.url), 'utf8')) as Recorded;

describe('parity with dive v0.13.1 on random images', () => {
  it(`gives dive's figures for all ${recorded.images.length} recorded images`, async () => {
    const images = recorded.images[Symbol.iterator]();
    for (const [seed, rounds, maxLayers, maxEntries] of recorded.sets) {
      const rnd = seeded(seed);
      for (let round = 0; round < rounds; round++) {
        const layers = randomImage(rnd, maxLayers, maxEntries);
        const expected = images.next().value as Recorded['images'][number];
        const r = await analyzeLayers(layers);
        const mine = {
          efficiency: goFormatV(r.dive.efficiency),
          sizeBytes: r.dive.sizeBytes,
          userSizeBytes: r.dive.userSizeBytes,
          wastedBytes: r.dive.wastedBytes,
          userWastedPercent: goFormatV(r.dive.userWastedPercent),
          inefficientFiles: byTies(r.dive.inefficientFiles),
        };
        const theirs = { ...expected.dive, inefficientFiles: byTies(expected.dive.inefficientFiles as Inefficient[]) };
        expect({ seed, round, ...mine }).toEqual({ seed: expected.seed, round: expected.round, ...theirs });
      }
    }
  }, 120_000);
});
