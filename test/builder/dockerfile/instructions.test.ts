import { describe, expect, it } from 'vitest';
import type { Instruction } from '../../../builder/dockerfile/instructions.js';
import { parseInstructions } from '../../../builder/dockerfile/parser.js';
import { thrown } from '../../support/errors.js';

const one = (line: string): Instruction => {
  const [first] = parseInstructions(line, { file: 'Dockerfile' });
  if (first === undefined) throw new Error('nothing parsed');
  return first;
};
const error = (text: string): string => thrown(() => parseInstructions(text, { file: 'Dockerfile' })).message;

describe('decoding instructions', () => {
  it('FROM with platform and a lower-cased stage name', () => {
    expect(one('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build-Env')).toMatchObject({
      kind: 'FROM', image: 'golang:1.22', name: 'build-env', platform: '$BUILDPLATFORM',
    });
    expect(one('from scratch as x')).toMatchObject({ kind: 'FROM', image: 'scratch', name: 'x' });
    expect(one('FROM alpine')).toEqual({
      kind: 'FROM', image: 'alpine', original: 'FROM alpine', location: { file: 'Dockerfile', line: 1, column: 1, endLine: 1 },
    });
  });

  it('FROM errors', () => {
    expect(error('FROM')).toMatch(/FROM requires either one or three arguments/);
    expect(error('FROM a b')).toMatch(/FROM requires either one or three arguments/);
    expect(error('FROM a AS b c')).toMatch(/FROM requires either one or three arguments/);
    expect(error('FROM a AS 1st')).toBe(
      `Dockerfile:1:11: invalid name for build stage: "1st", name can't start with a number or contain symbols (use letters, digits, '-', '_', '.')`,
    );
    expect(error('FROM a AS b$c')).toMatch(/invalid name for build stage: "b\$c"/);
    expect(error('FROM --plaform=linux/amd64 a')).toMatch(/unknown flag --plaform for FROM: did you mean --platform\?/);
  });

  it('RUN in shell and exec form, with network', () => {
    expect(one('RUN --network=none echo "$HOME"')).toMatchObject({
      kind: 'RUN', command: { form: 'shell', text: 'echo "$HOME"' }, network: 'none', mounts: [], heredocs: [],
    });
    expect(one('RUN ["sh", "-c", "echo $HOME"]')).toMatchObject({ command: { form: 'exec', argv: ['sh', '-c', 'echo $HOME'] } });
    expect(one('RUN --security=sandbox true')).toMatchObject({ kind: 'RUN' });
  });

  it('RUN errors', () => {
    expect(error('RUN --network=bridge x')).toMatch(/invalid network mode "bridge" \(expected default, none or host\)/);
    expect(error('RUN --security=insecure x')).toMatch(/^Dockerfile:1:5: RUN --security=insecure is not supported/);
    expect(error('RUN --security=root x')).toMatch(/security "root" is not valid/);
    expect(error('RUN --device=/dev/fuse x')).toMatch(/RUN --device is not supported/);
    expect(error('RUN --mont=type=cache,target=/x x')).toMatch(/unknown flag --mont for RUN: did you mean --mount\?/);
    expect(error('RUN')).toMatch(/RUN requires at least one argument/);
    expect(error('RUN []')).toMatch(/RUN requires at least one argument/);
  });

  it('COPY with every flag', () => {
    expect(one('COPY --from=build --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=.git a b /dst/')).toMatchObject({
      kind: 'COPY', sources: ['a', 'b'], dest: '/dst/', from: 'build', chown: 'app:app', chmod: '0644',
      link: true, parents: true, excludes: ['*.md', '.git'], json: false,
    });
    expect(one('COPY --link=false ["a b", "/c d"]')).toMatchObject({ sources: ['a b'], dest: '/c d', link: false, parents: false, json: true });
    expect(one('COPY $SRC ${DEST}')).toMatchObject({ sources: ['$SRC'], dest: '${DEST}' });
  });

  it('COPY errors', () => {
    expect(error('FROM x\n\n\n\n\n\nCOPY --chwon=1 a b')).toBe(
      'Dockerfile:7:6: unknown flag --chwon for COPY: did you mean --chown? (expected --from, --chown, --chmod, --link, --parents, --exclude)',
    );
    expect(error('COPY only')).toMatch(/COPY requires at least two arguments, but only one was provided/);
    expect(error('COPY\t\n\t\tquux \\\n      bar')).toMatch(/COPY requires at least two arguments/);
    expect(error('COPY --from=$STAGE a b')).toMatch(/variable expansion is not supported for --from/);
    expect(error('COPY --checksum=sha256:x a b')).toMatch(/unknown flag --checksum for COPY/);
    expect(error('COPY --from=a --from=b x y')).toMatch(/duplicate flag specified: --from/);
  });

  it('ADD with its own flags', () => {
    expect(one('ADD --checksum=sha256:abc --unpack=false --chmod=755 https://example.com/a.tgz /opt/')).toMatchObject({
      kind: 'ADD', sources: ['https://example.com/a.tgz'], dest: '/opt/', checksum: 'sha256:abc', unpack: false, chmod: '755', link: false,
    });
    expect(error('ADD --keep-git-dir=true https://github.com/a/b.git /src')).toMatch(/ADD --keep-git-dir is not supported/);
    expect(error('ADD --from=x a b')).toMatch(/unknown flag --from for ADD/);
    expect(error('ADD a')).toMatch(/ADD requires at least two arguments/);
  });

  it('ENV and LABEL in both forms, values raw', () => {
    expect(one('ENV PATH /usr/local/bin:$PATH')).toMatchObject({ kind: 'ENV', pairs: [{ key: 'PATH', value: '/usr/local/bin:$PATH', legacy: true }] });
    expect(one('ENV A=1 B="two words" C=three\\ words')).toMatchObject({
      pairs: [
        { key: 'A', value: '1', legacy: false },
        { key: 'B', value: '"two words"', legacy: false },
        { key: 'C', value: 'three\\ words', legacy: false },
      ],
    });
    expect(one('LABEL org.opencontainers.image.title="Kiln" version=1')).toMatchObject({
      kind: 'LABEL', pairs: [{ key: 'org.opencontainers.image.title', value: '"Kiln"' }, { key: 'version', value: '1' }],
    });
    expect(one('LABEL maintainer Some One')).toMatchObject({ pairs: [{ key: 'maintainer', value: 'Some One', legacy: true }] });
    expect(error('ENV')).toMatch(/ENV requires at least one argument/);
    expect(error('LABEL')).toMatch(/LABEL requires at least one argument/);
    expect(error('ENV =x')).toMatch(/ENV names can not be blank/);
    expect(error('LABEL =x')).toMatch(/LABEL names can not be blank/);
  });

  it('ARG with and without defaults', () => {
    expect(one('ARG a b=2 c="x y" d=')).toMatchObject({
      kind: 'ARG', args: [{ key: 'a' }, { key: 'b', value: '2' }, { key: 'c', value: '"x y"' }, { key: 'd', value: '' }],
    });
    expect(error('ARG')).toMatch(/ARG requires at least one argument/);
    expect(error('ARG =x')).toMatch(/ARG names can not be blank/);
  });

  it('one-argument instructions', () => {
    expect(one('WORKDIR /app/$NAME')).toMatchObject({ kind: 'WORKDIR', path: '/app/$NAME' });
    expect(one('USER app:app')).toMatchObject({ kind: 'USER', user: 'app:app' });
    expect(one('STOPSIGNAL SIGTERM')).toMatchObject({ kind: 'STOPSIGNAL', signal: 'SIGTERM' });
    expect(one('MAINTAINER Some One <one@example.com>')).toMatchObject({ kind: 'MAINTAINER', maintainer: 'Some One <one@example.com>' });
    for (const name of ['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL']) {
      expect(error(name)).toMatch(new RegExp(`^Dockerfile:1:1: ${name} requires exactly one argument`));
    }
    expect(error('MAINTAINER --boo joe@example.com')).toMatch(/unknown flag --boo/);
    expect(error('WORKDIR --x=1 /a')).toMatch(/unknown flag --x for WORKDIR/);
  });

  it('EXPOSE sorted, VOLUME in both forms', () => {
    expect(one('EXPOSE 8080/tcp 443 53/udp')).toMatchObject({ kind: 'EXPOSE', ports: ['443', '53/udp', '8080/tcp'] });
    expect(one('VOLUME ["/data", "/logs"]')).toMatchObject({ kind: 'VOLUME', paths: ['/data', '/logs'] });
    expect(one('VOLUME /data /logs')).toMatchObject({ paths: ['/data', '/logs'] });
    expect(error('EXPOSE')).toMatch(/EXPOSE requires at least one argument/);
    expect(error('VOLUME')).toMatch(/VOLUME requires at least one argument/);
    expect(error('VOLUME ["/a", " "]')).toMatch(/VOLUME specified can not be an empty string/);
  });

  it('CMD, ENTRYPOINT and SHELL', () => {
    expect(one('CMD ["nginx", "-g", "daemon off;"]')).toMatchObject({ kind: 'CMD', command: { form: 'exec', argv: ['nginx', '-g', 'daemon off;'] } });
    expect(one('CMD []')).toMatchObject({ kind: 'CMD', command: { form: 'exec', argv: [] } });
    expect(one('ENTRYPOINT exec app "$@"')).toMatchObject({ kind: 'ENTRYPOINT', command: { form: 'shell', text: 'exec app "$@"' } });
    expect(one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]')).toMatchObject({ kind: 'SHELL', argv: ['/bin/bash', '-o', 'pipefail', '-c'] });
    expect(error('SHELL /bin/bash -c')).toMatch(/SHELL requires the arguments to be in JSON form/);
    expect(error('SHELL []')).toMatch(/SHELL requires at least one argument/);
    expect(error('CMD --doit ["a"]')).toMatch(/unknown flag --doit for CMD/);
  });

  it('HEALTHCHECK', () => {
    expect(one('HEALTHCHECK NONE')).toMatchObject({ kind: 'HEALTHCHECK', test: ['NONE'] });
    expect(one('HEALTHCHECK CMD hello world')).toMatchObject({ test: ['CMD-SHELL', 'hello world'] });
    expect(one('HEALTHCHECK --interval=5s --timeout=3s --retries=3 --start-period=1m30s --start-interval=500ms CMD ["check", "-q"]')).toMatchObject({
      test: ['CMD', 'check', '-q'], interval: 5e9, timeout: 3e9, retries: 3, startPeriod: 90e9, startInterval: 500e6,
    });
    expect(one('HEALTHCHECK --start-period=0s --interval=0 --timeout=0s --retries=0 CMD ["foo"]')).toMatchObject({
      startPeriod: 0, interval: 0, timeout: 0, retries: 0,
    });
    expect(error('HEALTHCHECK')).toMatch(/HEALTHCHECK requires at least one argument/);
    expect(error('HEALTHCHECK NONE x')).toMatch(/HEALTHCHECK NONE takes no arguments/);
    expect(error('HEALTHCHECK --interval=5s NONE')).toMatch(/unknown flag --interval for HEALTHCHECK NONE/);
    expect(error('HEALTHCHECK CMD')).toMatch(/Missing command after HEALTHCHECK CMD/);
    expect(error('HEALTHCHECK CONNECT TCP 7000')).toMatch(/Unknown type "CONNECT" in HEALTHCHECK \(try CMD\)/);
    expect(error('HEALTHCHECK --interval=50ns CMD x')).toMatch(/Interval --interval cannot be less than 1ms/);
    expect(error('HEALTHCHECK --timeout=soon CMD x')).toMatch(/invalid duration "soon" for --timeout/);
    expect(error('HEALTHCHECK --retries=-1 CMD x')).toMatch(/--retries cannot be negative \(-1\)/);
    expect(error('HEALTHCHECK --retries=many CMD x')).toMatch(/invalid value "many" for --retries/);
  });

  it('ONBUILD decodes its trigger and keeps the expression for the image config', () => {
    const onbuild = one('ONBUILD  RUN --mount=type=cache,target=/c make');
    expect(onbuild).toMatchObject({
      kind: 'ONBUILD', expression: 'RUN --mount=type=cache,target=/c make', trigger: { kind: 'RUN', mounts: [{ type: 'cache' }] },
    });
    expect(one('onbuild copy <<EOF /x\nhi\nEOF')).toMatchObject({ kind: 'ONBUILD', expression: 'copy <<EOF /x\nhi\nEOF' });
    expect(error('ONBUILD')).toMatch(/ONBUILD requires at least one argument/);
    expect(error('ONBUILD ONBUILD RUN touch foobar')).toMatch(/Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/);
    expect(error('ONBUILD FROM scratch')).toMatch(/FROM isn't allowed as an ONBUILD trigger/);
    expect(error('ONBUILD maintainer me')).toMatch(/MAINTAINER isn't allowed as an ONBUILD trigger/);
    expect(error('ONBUILD RUN --bad x')).toMatch(/^Dockerfile:1:13: unknown flag --bad for RUN/);
  });

  it('refuses unknown instructions with a suggestion', () => {
    expect(error('FOO bar')).toMatch(/^Dockerfile:1:1: unknown instruction: FOO/);
    expect(error('foo bar')).toMatch(/unknown instruction: foo/);
    expect(error('COPPY a b')).toBe('Dockerfile:1:1: unknown instruction: COPPY: did you mean COPY?');
    expect(error('FROM x\n  EVN a=b')).toBe('Dockerfile:2:3: unknown instruction: EVN: did you mean ENV?');
  });
});
