import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

/**
 * Two independent stages (built in parallel) use the same cache id (one id per mode: a collision leaves the lock behind). Each RUN takes a "lock" directory in the
 * cache, holds it a moment and gives it back: with two holders at once the second `mkdir` fails.
 */
function twoStages(sharing: string, probe: string): string {
  const run = (name: string): string =>
    `RUN --mount=type=cache,id=c-${sharing},target=/c,sharing=${sharing} ${probe.replaceAll('NAME', name)}`;
  return ['FROM busybox AS one', run('one'), 'FROM busybox AS two', run('two'), 'FROM busybox', 'COPY --from=one /r1 /r1', 'COPY --from=two /r2 /r2', ''].join('\n');
}

const EXCLUSIVE = 'mkdir /c/held && sleep 1 && rmdir /c/held && echo NAME > /r$([ NAME = one ] && echo 1 || echo 2)';

describe('RUN --mount=type=cache sharing modes', () => {
  it('locked: concurrent RUNs of parallel stages take the cache one after the other', async () => {
    const ctx = await ws.context({ Dockerfile: twoStages('locked', EXCLUSIVE) });
    const r = await ws.build(['--no-cache', ctx]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
  });

  it('shared (the default): both RUNs use the cache at the same time (each waits to see the other there)', async () => {
    const other = (name: string): string => (name === 'one' ? 'two' : 'one');
    const rendezvous = (name: string): string =>
      `touch /c/${name} && i=0; while [ ! -e /c/${other(name)} ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done; test -e /c/${other(name)} && echo ${name} > /r${name === 'one' ? 1 : 2}`;
    const df = ['FROM busybox AS one', `RUN --mount=type=cache,id=c-shared,target=/c ${rendezvous('one')}`, 'FROM busybox AS two',
      `RUN --mount=type=cache,id=c-shared,target=/c,sharing=shared ${rendezvous('two')}`, 'FROM busybox', 'COPY --from=one /r1 /r1', 'COPY --from=two /r2 /r2', ''].join('\n');
    const ctx = await ws.context({ Dockerfile: df });
    const r = await ws.build(['--no-cache', ctx]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
  });

  it('private: a RUN that finds the cache busy gets a directory of its own', async () => {
    const ctx = await ws.context({ Dockerfile: twoStages('private', EXCLUSIVE) });
    const r = await ws.build(['--no-cache', ctx]);
    expect(r.code).toBe(0);
  });
});
