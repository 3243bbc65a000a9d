import { describe, expect, it } from 'vitest';
import { parseInstructions } from '../../../builder/dockerfile/parser.js';
import { decodeRunMount, parseRamSize } from '../../../builder/dockerfile/run-mount.js';
import { thrown } from '../../support/errors.js';

const base = { required: false, hasVariables: false };

describe('decodeRunMount', () => {
  it('decodes each mount type with its keys and default read-only mode', () => {
    expect(decodeRunMount('target=/src')).toEqual({ ...base, type: 'bind', target: '/src', readonly: true, spec: 'target=/src' });
    expect(decodeRunMount('type=bind,from=build,source=/out,dst=/in,rw')).toMatchObject({
      type: 'bind', from: 'build', source: '/out', target: '/in', readonly: false,
    });
    expect(decodeRunMount('type=cache,id=go,target=/root/.cache,sharing=locked,mode=0755,uid=1000,gid=1000')).toMatchObject({
      type: 'cache', id: 'go', target: '/root/.cache', sharing: 'locked', readonly: false, mode: 0o755, uid: 1000, gid: 1000,
    });
    expect(decodeRunMount('type=tmpfs,destination=/tmp,size=64m')).toMatchObject({ type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024, readonly: false });
    expect(decodeRunMount('type=secret,id=npm,env=NPM_TOKEN,required')).toMatchObject({
      type: 'secret', id: 'npm', env: 'NPM_TOKEN', required: true, readonly: true,
    });
    expect(decodeRunMount('type=secret,src=tok,target=/run/secrets/t,required=false')).toMatchObject({ source: 'tok', required: false });
    expect(decodeRunMount('type=ssh,required=true')).toMatchObject({ type: 'ssh', required: true });
    expect(decodeRunMount('TYPE=Cache,Target=/c,READONLY')).toMatchObject({ type: 'cache', target: '/c', readonly: true });
    expect(decodeRunMount('type=cache,target=/c,ro=false')).toMatchObject({ readonly: false });
    expect(decodeRunMount('type=bind,target=/c,readwrite=false')).toMatchObject({ readonly: true });
    expect(decodeRunMount('"type=bind","target=/a,b"')).toMatchObject({ target: '/a,b' });
  });

  it('keeps values with variables for later and decodes them with an expander', () => {
    const deferred = decodeRunMount('type=cache,id=$ID,target=${DIR}/cache,mode=$MODE');
    expect(deferred).toMatchObject({ type: 'cache', id: '$ID', target: '${DIR}/cache', hasVariables: true });
    expect(deferred.mode).toBeUndefined();
    const vars: Record<string, string> = { $ID: 'go', '${DIR}/cache': '/root/cache', $MODE: '0700' };
    expect(decodeRunMount(deferred.spec, (w) => vars[w] ?? w)).toMatchObject({ id: 'go', target: '/root/cache', mode: 0o700, hasVariables: false });
  });

  it('refuses what BuildKit refuses', () => {
    const bad: [string, RegExp][] = [
      ['type=nfs,target=/x', /unsupported mount type "nfs"/],
      ['type=cache,target=/x,sharing=global', /unsupported sharing value "global"/],
      ['type=bind,target=/x,sharing=shared', /invalid cache sharing set for bind mount/],
      ['type=bind,target=/x,mode=0755', /mode not allowed for "bind" type mounts/],
      ['type=tmpfs,target=/x,uid=1', /uid not allowed for "tmpfs"/],
      ['type=cache,target=/x,mode=999', /invalid value 999 for mode/],
      ['type=cache,target=/x,uid=-1', /invalid value -1 for uid/],
      ['type=bind,target=/x,ro=maybe', /invalid value for ro: maybe/],
      ['type=bind,target=/x,required', /unexpected key 'required' for mount type 'bind'/],
      ['required,type=secret,id=x', /unexpected key 'required' for mount type 'bind'/],
      ['type=cache,target=/x,size=1g', /unexpected key 'size' for mount type 'cache'/],
      ['type=cache,target=/x,colour=red', /unexpected key 'colour'/],
      ['type=cache,target=/x,nokey', /invalid field 'nokey' must be a key=value pair/],
      ['type=secret,from=x,id=y', /secret mount should not have a from/],
      ['type=secret,id=y,sharing=locked', /secret mount should not define sharing/],
      ['type=secret', /one of source, target required/],
      ['type=secret,source=a,id=b', /both source and id can't be set/],
      ['type=bind,from=$STAGE,target=/x', /'from' doesn't support variable expansion/],
      ['type=cache', /needs a target/],
      ['type=cache,target="/x', /failed to parse csv mounts/],
    ];
    for (const [spec, message] of bad) expect(() => decodeRunMount(spec), spec).toThrow(message);
  });

  it('reads RAM sizes as docker does', () => {
    expect(parseRamSize('100')).toBe(100);
    expect(parseRamSize('1k')).toBe(1024);
    expect(parseRamSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseRamSize('2 MB')).toBe(2 * 1024 ** 2);
    expect(() => parseRamSize('lots')).toThrow(/invalid value for size/);
  });
});

describe('RUN --mount in a Dockerfile', () => {
  it('decodes every --mount in order and reports a bad one at its position', () => {
    const [run] = parseInstructions('RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b make', { file: 'Dockerfile' });
    expect(run?.kind === 'RUN' && run.mounts.map((m) => [m.type, m.target])).toEqual([
      ['cache', '/a'],
      ['tmpfs', '/b'],
    ]);
    const err = thrown(() => parseInstructions('FROM x\nRUN --mount=type=cache,target=/a \\\n  --mount=type=nfs make', { file: 'Dockerfile' }));
    expect(err.message).toBe('Dockerfile:3:3: invalid --mount=type=nfs: unsupported mount type "nfs" (expected bind, cache, tmpfs, secret, ssh)');
  });
});
