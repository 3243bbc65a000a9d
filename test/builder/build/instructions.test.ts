import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, type BuildWorkspace } from '../../support/build-fixture.js';
import { buildFiles, ownHistory, type BuiltImage } from './helpers.js';

let ws: BuildWorkspace;

beforeAll(async () => {
  ws = await buildWorkspace();
});
afterAll(async () => ws.cleanup());

describe('heredocs', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const dockerfile = [
      'FROM busybox',
      'ENV NAME=world',
      'RUN <<EOF',
      'echo one > /h1',
      'echo "two $NAME" >> /h1',
      'EOF',
      'RUN <<EOF',
      '#!/bin/awk -f',
      'BEGIN { print "awk ran" > "/h2" }',
      'EOF',
      'RUN <<EOF',
      '#!/bin/sh',
      'echo "sh script $0" > /h2b',
      'EOF',
      'RUN <<-EOF',
      '\techo tabbed > /h3',
      '\tEOF',
      'RUN <<EOF sh',
      'echo via-sh > /h4',
      'EOF',
      'RUN cat <<EOF > /h5',
      'name=$NAME',
      'EOF',
      "RUN cat <<'EOF' > /h6",
      'quoted=$NAME',
      'EOF',
      'RUN cat <<A > /h7 && cat <<B >> /h7',
      'first',
      'A',
      'second',
      'B',
      'COPY <<EOF /c1',
      'hello $NAME "q" \'r\'',
      'EOF',
      'COPY <<"EOF" /c2',
      'hello $NAME',
      'EOF',
      'COPY <<A <<B /multi/',
      'from a',
      'A',
      'from b',
      'B',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: dockerfile });
  });

  it('RUN <<EOF runs the body as a shell script, the stage ENV in scope', () => {
    expect(image.text('h1')).toBe('one\ntwo world\n');
  });

  it('RUN <<EOF with a #! line runs the body with that interpreter', () => {
    expect(image.text('h2')).toBe('awk ran\n');
    expect(image.text('h2b')).toMatch(/^sh script \/\S+\n$/);
  });

  it('RUN <<-EOF strips leading tabs from the body and the delimiter', () => {
    expect(image.text('h3')).toBe('tabbed\n');
  });

  it('RUN <<EOF sh and cat <<EOF > f: the heredoc is the command\'s stdin', () => {
    expect(image.text('h4')).toBe('via-sh\n');
    expect(image.text('h5')).toBe('name=world\n');
    expect(image.text('h6')).toBe('quoted=$NAME\n');
  });

  it('several heredocs on one RUN line feed their commands in order', () => {
    expect(image.text('h7')).toBe('first\nsecond\n');
  });

  it('COPY <<EOF writes the body, expanded unless the delimiter is quoted', () => {
    expect(image.text('c1')).toBe('hello world "q" \'r\'\n');
    expect(image.text('c2')).toBe('hello $NAME\n');
  });

  it('COPY <<A <<B dir/ writes one file per heredoc, named after its delimiter', () => {
    expect(image.text('multi/A')).toBe('from a\n');
    expect(image.text('multi/B')).toBe('from b\n');
  });

  it('the script files a RUN heredoc needs stay out of the layers', () => {
    expect(image.layers.flat().map((m) => m.name).filter((n) => n.startsWith('dev/'))).toEqual([]);
  });
});

describe('command forms, escapes, continuations and SHELL', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const dockerfile = [
      'FROM busybox',
      'ENV NAME=world',
      'RUN ["/bin/sh", "-c", "echo json-form > /j1"]',
      'RUN ["/bin/sh", "-c", "echo \\"$0\\" > /j2", "$NAME"]',
      'RUN echo a \\',
      '    b > /cont',
      'RUN echo x \\',
      '# a comment inside a continuation is dropped',
      '    y > /cont2',
      'ENV ESCAPED=a\\b',
      'SHELL ["/bin/ash", "-c"]',
      'RUN echo "$0" > /shell',
      'SHELL ["/bin/sh", "-e", "-c"]',
      'RUN echo "$-" > /shell2',
      'CMD echo shell form',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: dockerfile });
  });

  it('JSON form runs the argv as is: no shell added, no expansion by the builder', () => {
    expect(image.text('j1')).toBe('json-form\n');
    expect(image.text('j2')).toBe('$NAME\n');
  });

  it('line continuations join lines; comment lines inside them are dropped', () => {
    expect(image.text('cont')).toBe('a b\n');
    expect(image.text('cont2')).toBe('x y\n');
  });

  it('the default escape character removes a backslash in ENV values', () => {
    expect(image.cc.Env).toContain('ESCAPED=ab');
  });

  it('SHELL changes the shell of later RUNs and shell-form CMD, and is recorded', () => {
    expect(image.text('shell')).toBe('/bin/ash\n');
    expect(image.text('shell2')).toContain('e');
    expect(image.cc.Shell).toEqual(['/bin/sh', '-e', '-c']);
    expect(image.cc.Cmd).toEqual(['/bin/sh', '-e', '-c', 'echo shell form']);
  });

  it('# escape=` makes the backtick the escape and line-continuation character', async () => {
    const dockerfile = ['# escape=`', 'FROM busybox', 'ENV WINPATH=C:\\tools\\bin', 'RUN echo one `', '    two > /esc', ''].join('\n');
    const img = await buildFiles(ws, { Dockerfile: dockerfile });
    expect(img.cc.Env).toContain('WINPATH=C:\\tools\\bin');
    expect(img.text('esc')).toBe('one two\n');
  });
});

describe('config instructions', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const dockerfile = [
      'FROM busybox',
      'MAINTAINER Jane Doe <jane@example.com>',
      'ENV A=1 B="two words" C=\'single $A\'',
      'ENV LEGACY value with spaces',
      'ENV D=${A}-x',
      'LABEL "com.example.quoted"="a b" plain=yes multi=$A',
      'EXPOSE 80 443/tcp 53/udp 8000-8001',
      'VOLUME ["/data", "/logs"]',
      'VOLUME /cache',
      'STOPSIGNAL SIGINT',
      'HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=4 CMD ["/bin/true"]',
      'ENTRYPOINT ["/bin/echo"]',
      'CMD ["hello"]',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: dockerfile });
  });

  it('ENV in both forms, with quotes, and expanding earlier ENV', () => {
    expect(image.cc.Env).toEqual([
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'A=1',
      'B=two words',
      'C=single $A',
      'LEGACY=value with spaces',
      'D=1-x',
    ]);
  });

  it('LABEL, EXPOSE, VOLUME, STOPSIGNAL', () => {
    expect(image.cc.Labels).toEqual({ 'com.example.quoted': 'a b', plain: 'yes', multi: '1' });
    expect(image.cc.ExposedPorts).toEqual({ '80/tcp': {}, '443/tcp': {}, '53/udp': {}, '8000-8001/tcp': {} });
    expect(image.cc.Volumes).toEqual({ '/data': {}, '/logs': {}, '/cache': {} });
    expect(image.cc.StopSignal).toBe('SIGINT');
  });

  it('HEALTHCHECK durations are nanoseconds', () => {
    expect(image.cc.Healthcheck).toEqual({ Test: ['CMD', '/bin/true'], Interval: 30e9, Timeout: 5e9, StartPeriod: 60e9, StartInterval: 2e9, Retries: 4 });
  });

  it('MAINTAINER becomes the author; ENTRYPOINT and CMD exec forms are kept', () => {
    expect(image.config.author).toBe('Jane Doe <jane@example.com>');
    expect(image.cc.Entrypoint).toEqual(['/bin/echo']);
    expect(image.cc.Cmd).toEqual(['hello']);
  });

  it('every instruction has a history entry, none of them a layer', () => {
    const own = ownHistory(image);
    expect(own.map((h) => h.created_by.split(' ')[0])).toEqual(['MAINTAINER', 'ENV', 'ENV', 'ENV', 'LABEL', 'EXPOSE', 'VOLUME', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD']);
    expect(own.every((h) => h.empty_layer === true)).toBe(true);
    expect(image.layers.length).toBe(1);
  });

  it('HEALTHCHECK NONE disables an inherited check; the shell form is CMD-SHELL', async () => {
    const dockerfile = ['FROM busybox AS checked', 'HEALTHCHECK CMD wget -q -O- localhost', 'FROM checked AS unchecked', 'HEALTHCHECK NONE', ''].join('\n');
    const checked = await buildFiles(ws, { Dockerfile: dockerfile }, ['--target', 'checked']);
    expect(checked.cc.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'wget -q -O- localhost'] });
    const unchecked = await buildFiles(ws, { Dockerfile: dockerfile });
    expect(unchecked.cc.Healthcheck).toEqual({ Test: ['NONE'] });
  });
});

describe('ENTRYPOINT and CMD interplay', () => {
  const dockerfile = [
    'FROM busybox AS parent',
    'CMD ["parent-cmd"]',
    'FROM parent AS reset',
    'ENTRYPOINT ["/bin/ls"]',
    'FROM parent AS after',
    'ENTRYPOINT ["/bin/ls"]',
    'CMD ["-l"]',
    'FROM parent AS before',
    'CMD ["-a"]',
    'ENTRYPOINT ["/bin/ls"]',
    'FROM busybox AS shellform',
    'ENTRYPOINT exec /bin/ls "$HOME"',
    'CMD -l',
    '',
  ].join('\n');
  const target = (name: string): Promise<BuiltImage> => buildFiles(ws, { Dockerfile: dockerfile }, ['--target', name]);

  it('ENTRYPOINT drops the CMD inherited from the base', async () => {
    const img = await target('reset');
    expect(img.cc.Entrypoint).toEqual(['/bin/ls']);
    expect(img.cc.Cmd).toBeUndefined();
  });

  it('a CMD of the same stage is kept, before or after ENTRYPOINT', async () => {
    expect((await target('after')).cc.Cmd).toEqual(['-l']);
    expect((await target('before')).cc.Cmd).toEqual(['-a']);
  });

  it('shell forms are wrapped in /bin/sh -c, unexpanded', async () => {
    const img = await target('shellform');
    expect(img.cc.Entrypoint).toEqual(['/bin/sh', '-c', 'exec /bin/ls "$HOME"']);
    expect(img.cc.Cmd).toEqual(['/bin/sh', '-c', '-l']);
  });
});

describe('USER and WORKDIR', () => {
  let image: BuiltImage;

  beforeAll(async () => {
    const dockerfile = [
      'FROM busybox',
      'USER app',
      'RUN id -u > /tmp/uid && id -g >> /tmp/uid',
      'WORKDIR work',
      'WORKDIR sub/deeper',
      'RUN pwd > /tmp/pwd && touch mine',
      'USER app:staff',
      'RUN id -g > /tmp/gid',
      'USER root',
      'WORKDIR /root/../opt',
      '',
    ].join('\n');
    image = await buildFiles(ws, { Dockerfile: dockerfile });
  });

  it('USER by name from /etc/passwd runs RUN as that user and group', () => {
    expect(image.text('tmp/uid')).toBe('1000\n1000\n');
    expect(image.text('tmp/gid')).toBe('50\n');
    expect(image.cc.User).toBe('root');
  });

  it('a relative WORKDIR resolves against the previous one; missing dirs are made, owned by USER', () => {
    expect(image.text('tmp/pwd')).toBe('/work/sub/deeper\n');
    for (const dir of ['work', 'work/sub', 'work/sub/deeper']) {
      const entry = image.file(dir);
      expect(entry?.type, dir).toBe('5');
      expect([entry?.uid, entry?.gid], dir).toEqual([1000, 1000]);
    }
    expect(image.file('work/sub/deeper/mine')?.uid).toBe(1000);
  });

  it('WORKDIR of an existing dir makes no layer (its mode stays); through a symlink it makes the link\'s target', async () => {
    const img = await buildFiles(ws, { Dockerfile: ['FROM busybox', 'RUN ln -s /srv /linked', 'USER app', 'WORKDIR /tmp', 'WORKDIR /linked/app', ''].join('\n') });
    const workdirs = ownHistory(img).filter((h) => h.created_by.startsWith('WORKDIR'));
    expect(workdirs.map((h) => [h.created_by, h.empty_layer === true])).toEqual([
      ['WORKDIR /tmp', true],
      ['WORKDIR /linked/app', false],
    ]);
    const last = img.layers.at(-1)!;
    expect(last.map((m) => [m.name.replace(/\/$/, ''), m.type, m.uid])).toEqual([
      ['srv', '5', 1000],
      ['srv/app', '5', 1000],
    ]);
    expect(img.layers.slice(1).flat().some((m) => m.name.replace(/\/$/, '') === 'tmp')).toBe(false);
  });

  it('WORKDIR is cleaned and recorded', () => {
    expect(image.cc.WorkingDir).toBe('/opt');
    expect(ownHistory(image).map((h) => h.created_by).filter((c) => c.startsWith('WORKDIR'))).toEqual(['WORKDIR /work', 'WORKDIR /work/sub/deeper', 'WORKDIR /opt']);
  });
});

describe('ONBUILD', () => {
  it('triggers run in the child build, which does not inherit them', async () => {
    const parentOut = join(ws.dir, 'onbuild-parent');
    const parentCtx = await ws.context({ Dockerfile: ['FROM busybox', 'ONBUILD RUN echo triggered > /onbuild.txt', 'ONBUILD ENV FROM_TRIGGER=yes', ''].join('\n') });
    const p = await ws.build(['-t', 'parent:1', '--output', `type=oci,dest=${parentOut},tar=false`, parentCtx]);
    expect(p.code, p.stderr).toBe(0);
    const child = await buildFiles(ws, { Dockerfile: ['FROM parent', 'RUN cat /onbuild.txt > /seen', ''].join('\n') }, ['--build-context', `parent=oci-layout://${parentOut}:1`]);
    expect(child.text('seen')).toBe('triggered\n');
    expect(child.cc.Env).toContain('FROM_TRIGGER=yes');
    expect(child.cc.OnBuild ?? []).toEqual([]);
  });

  it('the parent records its triggers in OnBuild, without running them', async () => {
    const img = await buildFiles(ws, { Dockerfile: ['FROM busybox', 'ONBUILD RUN echo triggered > /onbuild.txt', 'ONBUILD ENV FROM_TRIGGER=yes', ''].join('\n') });
    expect(img.cc.OnBuild).toEqual(['RUN echo triggered > /onbuild.txt', 'ENV FROM_TRIGGER=yes']);
    expect(img.file('onbuild.txt')).toBeUndefined();
    expect(img.cc.Env).not.toContain('FROM_TRIGGER=yes');
  });
});
