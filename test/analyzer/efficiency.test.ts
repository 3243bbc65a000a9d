import { describe, expect, it } from 'vitest';
import { analyzeLayers, type Entry } from './images.js';

// Each image holds one tricky case; the expected figures are worked out by hand from dive v0.13.1's definitions:
// layer size = Σ tar header sizes; per path over the LEAVES of each layer's tree: cum = Σ sizes, min = smallest;
// a whiteout's size is 0 unless its target (in the layers below, stacked) is a directory with a header, then the
// whole subtree; efficiency = Σ min ÷ Σ cum; wasted = Σ cum of paths seen ≥ 2 times; user% = wasted ÷ Σ sizes
// of layers 2..n. "corrected" is the overlay view: bytes that a later layer (or the same tar) hides.

const dir = (name: string): Entry => ({ name, type: 'directory' });
const file = (name: string, size: number): Entry => ({ name, size });

describe('dive numbers and the corrected block, case by case', () => {
  it('a file overwritten in a later layer', async () => {
    const r = await analyzeLayers([{ entries: [dir('app/'), file('app/f', 1000)] }, { entries: [file('app/f', 300)] }]);
    // /app/f: cum 1000+300 = 1300, min 300 → efficiency 300/1300; wasted 1300 (both copies); user 1300/300.
    expect(r.layers.map((l) => l.sizeBytes)).toEqual([1000, 300]);
    expect(r.dive.efficiency).toBe(300 / 1300);
    expect(r.dive.wastedBytes).toBe(1300);
    expect(r.dive.userWastedPercent).toBe(1300 / 300);
    expect(r.dive.inefficientFiles).toEqual([{ count: 2, sizeBytes: 1300, path: '/app/f' }]);
    // Overlay: only the shadowed 1000 bytes are waste; 300 survive.
    expect(r.corrected.wastedBytes).toBe(1000);
    expect(r.corrected.efficiency).toBe(300 / 1300);
    expect(r.corrected.userWastedPercent).toBe(1000 / 300);
    expect(r.layers[1]?.changed).toEqual({ count: 1, bytes: 300 });
    expect(r.corrected.waste[0]).toMatchObject({ writtenBy: 0, removedBy: 1, kind: 'overwritten', bytes: 1000 });
  });

  it('a file deleted by a whiteout', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 1000), file('keep', 10)] }, { entries: [{ name: '.wh.a' }, file('b', 10)] }]);
    // /a: 1000 then the whiteout counts 0 (its target is a file) → cum 1000, min 0; /keep 10; /b 10.
    // efficiency (0+10+10)/(1000+10+10) = 20/1020; wasted 1000; user 1000/10.
    expect(r.dive.efficiency).toBe(20 / 1020);
    expect(r.dive.wastedBytes).toBe(1000);
    expect(r.dive.userWastedPercent).toBe(100);
    expect(r.corrected.wastedBytes).toBe(1000);
    expect(r.layers[1]?.deleted).toEqual({ count: 1, bytes: 1000 });
    expect(r.suggestions[0]?.kind).toBe('delete-in-same-step');
    expect(r.suggestions[0]?.message).toContain('delete them in the same RUN that creates them');
  });

  it('a directory deleted by a whiteout: dive counts it once, at full size, and calls it efficient', async () => {
    const r = await analyzeLayers([
      { entries: [dir('d/'), file('d/x', 300), file('d/y', 200), dir('d/sub/'), file('d/sub/z', 100)] },
      { entries: [{ name: '.wh.d' }, file('k', 5)] },
    ]);
    // Leaves: /d/sub/z 100, /d/x 300, /d/y 200; then /d (whiteout of a directory: 0+300+200+0+100 = 600) and /k 5.
    // No path is seen twice → wasted 0 and efficiency (100+300+200+600+5)/(same) = 1.
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.wastedBytes).toBe(0);
    expect(r.dive.userWastedPercent).toBe(0);
    // Overlay: the 600 bytes under /d are gone; 5 of 605 survive.
    expect(r.corrected.wastedBytes).toBe(600);
    expect(r.corrected.efficiency).toBe(5 / 605);
    expect(r.corrected.userWastedPercent).toBe(600 / 5);
    expect(r.layers[1]?.deleted).toEqual({ count: 3, bytes: 600 });
  });

  it('a directory deleted whose lower entry had no header of its own counts 0 in dive', async () => {
    const r = await analyzeLayers([{ entries: [file('p/q', 70)] }, { entries: [{ name: '.wh.p' }, file('r', 1)] }]);
    // /p was only implied by p/q, so dive's IsDir is false → the whiteout counts 0: /p/q 70, /p 0, /r 1 → 71/71.
    expect(r.dive.efficiency).toBe(1);
    expect(r.corrected.wastedBytes).toBe(70);
    expect(r.corrected.efficiency).toBe(1 / 71);
  });

  it('an opaque directory: dive ignores the marker, the overlay hides the lower contents', async () => {
    const r = await analyzeLayers([
      { entries: [dir('o/'), file('o/a', 400), file('o/b', 100)] },
      { entries: [dir('o/'), { name: 'o/.wh..wh..opq' }, file('o/c', 50)] },
    ]);
    // dive drops .wh..wh..opq: leaves /o/a 400, /o/b 100, /o/c 50, each once → efficiency 1, wasted 0.
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.wastedBytes).toBe(0);
    expect(r.layers[1]?.sizeBytes).toBe(50);
    // Overlay: /o/a and /o/b are hidden → 500 of 550 wasted.
    expect(r.corrected.wastedBytes).toBe(500);
    expect(r.corrected.efficiency).toBe(50 / 550);
    expect(r.layers[1]?.deleted).toEqual({ count: 2, bytes: 500 });
    expect(r.corrected.waste[0]).toMatchObject({ kind: 'opaque', writtenBy: 0, removedBy: 1, count: 2, bytes: 500 });
  });

  it('a file that grows: dive keeps the smallest copy, the overlay the last one', async () => {
    const r = await analyzeLayers([{ entries: [file('log', 100)] }, { entries: [file('log', 200)] }, { entries: [file('log', 400)] }]);
    // /log: cum 700, min 100 → 100/700; wasted 700; user 700/(200+400).
    expect(r.dive.efficiency).toBe(100 / 700);
    expect(r.dive.wastedBytes).toBe(700);
    expect(r.dive.userWastedPercent).toBe(700 / 600);
    expect(r.dive.inefficientFiles).toEqual([{ count: 3, sizeBytes: 700, path: '/log' }]);
    // Overlay: 100 + 200 shadowed, 400 survive.
    expect(r.corrected.wastedBytes).toBe(300);
    expect(r.corrected.efficiency).toBe(400 / 700);
    expect(r.corrected.userWastedPercent).toBe(300 / 600);
  });

  it('hard links and symlinks count their header size (0) and still show up as duplicates', async () => {
    const r = await analyzeLayers([
      { entries: [file('bin/busybox', 1000), { name: 'bin/ls', type: 'link', linkname: 'bin/busybox' }, { name: 'lib', type: 'symlink', linkname: 'usr/lib' }] },
      { entries: [{ name: 'bin/ls', type: 'link', linkname: 'bin/busybox' }, { name: 'lib', type: 'symlink', linkname: 'usr/lib64' }] },
    ]);
    // /bin/busybox 1000; /bin/ls 0+0 and /lib 0+0 are seen twice with 0 bytes → efficiency 1000/1000, wasted 0.
    // Equal sizes are listed by path.
    // The second layer's size is 0, so user% = 0/0 = NaN (dive's CI treats NaN as a pass).
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.wastedBytes).toBe(0);
    expect(r.dive.userWastedPercent).toBeNaN();
    expect(r.dive.inefficientFiles.map((f) => [f.path, f.count, f.sizeBytes])).toEqual([
      ['/bin/ls', 2, 0],
      ['/lib', 2, 0],
    ]);
    const ls = r.layers[0]?.fileList?.find((f) => f.path === 'bin/ls');
    expect(ls).toMatchObject({ typeFlag: 49, linkName: 'bin/busybox', size: 0 });
    expect(r.layers[0]?.fileList?.find((f) => f.path === 'lib')).toMatchObject({ typeFlag: 50, linkName: 'usr/lib', fileMode: 2 ** 27 + 0o644 });
  });

  it('a moved file (copied to a new path, deleted at the old one)', async () => {
    const r = await analyzeLayers([{ entries: [file('a/big', 800)] }, { entries: [{ name: 'a/.wh.big' }, file('b/big', 800)] }]);
    // /a/big: 800 then 0 (whiteout of a file) → cum 800, min 0; /b/big 800 → 800/1600; wasted 800; user 800/800.
    expect(r.dive.efficiency).toBe(0.5);
    expect(r.dive.wastedBytes).toBe(800);
    expect(r.dive.userWastedPercent).toBe(1);
    expect(r.corrected.wastedBytes).toBe(800);
    expect(r.corrected.efficiency).toBe(0.5);
  });

  it('an empty directory touched twice is a zero-byte duplicate', async () => {
    const r = await analyzeLayers([{ entries: [dir('e/'), file('f', 100)] }, { entries: [dir('e/'), file('g', 50)] }]);
    // /e is a leaf (empty) in both layers: cum 0, min 0, count 2 → listed, 0 bytes; efficiency 150/150.
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.wastedBytes).toBe(0);
    expect(r.dive.userWastedPercent).toBe(0);
    expect(r.dive.inefficientFiles).toEqual([{ count: 2, sizeBytes: 0, path: '/e' }]);
    expect(r.corrected.wastedBytes).toBe(0);
  });

  it('zero waste', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 10)] }, { entries: [file('b', 20)] }]);
    expect(r.dive).toMatchObject({ efficiency: 1, wastedBytes: 0, userWastedPercent: 0, sizeBytes: 30, userSizeBytes: 20, inefficientFiles: [] });
    expect(r.corrected).toMatchObject({ efficiency: 1, wastedBytes: 0, userWastedPercent: 0 });
    expect(r.layers.map((l) => l.added)).toEqual([
      { count: 1, bytes: 10 },
      { count: 1, bytes: 20 },
    ]);
  });

  it('a single-layer image: user% is 0/0 = NaN', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 10), file('b', 5)] }]);
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.userSizeBytes).toBe(0);
    expect(r.dive.userWastedPercent).toBeNaN();
    expect(r.corrected.userWastedPercent).toBeNaN();
  });

  it('paths are cleaned as Go path.Clean does; the "." entry is skipped', async () => {
    const r = await analyzeLayers([{ entries: [dir('./'), dir('./etc/'), file('./etc/x', 10), file('etc//y', 3)] }, { entries: [file('/etc/x', 20)] }]);
    // /etc/x: 10 + 20 → min 10 of 30; /etc/y 3 → (10+3)/(30+3).
    expect(r.dive.inefficientFiles).toEqual([{ count: 2, sizeBytes: 30, path: '/etc/x' }]);
    expect(r.dive.efficiency).toBe(13 / 33);
    expect(r.layers[0]?.entries).toBe(3);
  });

  it('the same path twice in one tar: dive keeps the last header, the overlay charges the first copy', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 100), file('a', 30)] }, { entries: [file('b', 1)] }]);
    // Layer size counts both headers (130); the tree keeps one leaf /a of 30 → efficiency 31/31.
    expect(r.layers[0]?.sizeBytes).toBe(130);
    expect(r.dive.efficiency).toBe(1);
    expect(r.corrected.wastedBytes).toBe(100);
    expect(r.corrected.waste[0]).toMatchObject({ kind: 'duplicate', writtenBy: 0, removedBy: 0 });
    // The first layer's own duplicate is not the user's doing.
    expect(r.corrected.userWastedBytes).toBe(0);
  });

  it('a whiteout of nothing stops dive counting that layer and leaves a -1 minimum', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 100)] }, { entries: [{ name: '.wh.nothere' }, file('z', 50)] }]);
    // Layer 2 is visited in name order: /nothere first → no target below → dive stops there, so /z is never
    // counted, and /nothere keeps min = -1, cum 0: efficiency (100 − 1)/100.
    expect(r.dive.efficiency).toBe(0.99);
    expect(r.dive.sizeBytes).toBe(150);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toContain('/nothere');
  });

  it('whiteouts of a whole stacked directory count every lower layer', async () => {
    const r = await analyzeLayers([
      { entries: [dir('d/'), file('d/a', 10)] },
      { entries: [dir('d/'), file('d/b', 20)] },
      { entries: [{ name: '.wh.d' }, file('z', 1)] },
    ]);
    // Leaves: L1 /d/a 10; L2 /d/b 20; L3 /d = stacked dir subtree 0+10+20 = 30, /z 1. All once → efficiency 1.
    expect(r.dive.efficiency).toBe(1);
    expect(r.dive.wastedBytes).toBe(0);
    expect(r.corrected.wastedBytes).toBe(30);
    expect(r.corrected.waste.map((g) => [g.writtenBy, g.removedBy, g.bytes])).toEqual([
      [1, 2, 20],
      [0, 2, 10],
    ]);
  });

  it('history: empty_layer entries are skipped, /bin/sh -c is stripped, missing entries say (missing)', async () => {
    const r = await analyzeLayers([{ entries: [file('a', 1)] }, { entries: [file('b', 1)] }, { entries: [file('c', 1)] }], {
      history: [{ created_by: '/bin/sh -c #(nop) ADD file:abc in / ' }, { created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true }, { created_by: 'RUN /bin/sh -c make # buildkit' }],
    });
    expect(r.layers.map((l) => l.command)).toEqual(['#(nop) ADD file:abc in / ', 'RUN /bin/sh -c make # buildkit', '(missing)']);
    expect(r.layers[2]?.historyDigest).toBe('');
    expect(r.layers[0]?.historyDigest).toBe(r.layers[0]?.diffId);
  });
});
