import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFromDirectory } from '../../../builder/directory-image.js';
import { openOciLayout } from '../../../oci/layout/layout-target.js';
import { buildWorkspace, listTree, mountsUnder, readLayoutImage, tarNames, type BuildWorkspace } from '../../support/build-fixture.js';
import { debootstrapRootfs } from '../../support/debootstrap.js';

// debootstrap (cold) and apt-get against the real mirror take minutes; nothing here is timed, it just may not hang.
const GENEROUS = 10 * 60_000;

let ws: BuildWorkspace;
let debianContext: string;

beforeAll(async () => {
  ws = await buildWorkspace();
  const rootfs = await debootstrapRootfs(join(ws.dir, 'debian-rootfs'));
  const layout = join(ws.dir, 'debian');
  const target = await openOciLayout({ dir: layout, mode: 'write' });
  await imageFromDirectory({ directory: rootfs, target, tag: 'bookworm', config: { Cmd: ['/bin/bash'] } });
  await target.close();
  debianContext = `debian=oci-layout://${layout}:bookworm`;
}, GENEROUS);
afterAll(async () => ws?.cleanup());

describe('kiln build on a debootstrap minbase rootfs', () => {
  it('RUN apt-get install works through the Debian mirror and the installed program runs', async () => {
    const ctx = await ws.context({
      Dockerfile: 'FROM debian\nRUN apt-get update && apt-get install -y --no-install-recommends hello && hello\n',
    });
    const out = join(ws.dir, 'out');
    const r = await ws.kiln(['build', '--progress', 'plain', '--build-context', debianContext, '--output', `type=oci,dest=${out},tar=false`, ctx]);
    expect(r.stderr).toContain('Hello, world!');
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);

    const image = await readLayoutImage(out);
    expect(image.layers).toHaveLength(2);
    const runLayer = tarNames(image.layers[1]!);
    expect(runLayer).toContain('usr/bin/hello');
    // The RUN's /proc, /dev and the provided resolv.conf/hosts are the executor's, not the layer's.
    expect(runLayer.some((n) => n.startsWith('proc/') || n.startsWith('dev/') || n === 'etc/resolv.conf' || n === 'etc/hosts')).toBe(false);
  }, GENEROUS);

  it('leaves no mounts and no scratch directories behind', async () => {
    expect(await mountsUnder(ws.dir)).toEqual([]);
    expect(await listTree(join(ws.dataDir, 'tmp'))).toEqual([]);
  });
});
