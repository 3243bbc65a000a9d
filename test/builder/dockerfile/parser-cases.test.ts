import { describe, expect, it } from 'vitest';
import { dump } from './dump.js';

// Dockerfiles exercising the edge cases of BuildKit's parser test files (continuations, escapes, ENV forms,
// flags, JSON detection, directives), written for Kiln; the expectations use BuildKit's dump notation.
const lines = (...l: string[]): string => l.join('\n');

const cases: { name: string; dockerfile: string; expected: string[] }[] = [
  {
    name: 'continuation keeps the indentation of continued lines',
    dockerfile: lines(
      'FROM debian:12',
      '',
      'RUN printf one\\',
      '  two\\',
      '  three  \\',
      '  four\\',
      '  fi\\',
      've',
      'RUN printf a  \\',
      '  b',
      'RUN printf a  \\',
      'b',
      'RUN printf x \\',
      'y\\',
      'z',
      'RUN printf p  \\  ',
      'q',
      'RUN printf hi \\',
      ' \\',
      ' there \\',
      '\\',
      ' al\\',
      '\\',
      'l',
      'RUN printf m\\',
      'n',
      '',
      'RUN printf start \\',
      '# a comment',
      '',
      '# a comment after a blank line',
      '',
      'and the rest',
    ),
    expected: [
      '(from "debian:12")',
      '(run "printf one  two  three    four  five")',
      '(run "printf a    b")',
      '(run "printf a  b")',
      '(run "printf x yz")',
      '(run "printf p  q")',
      '(run "printf hi   there  all")',
      '(run "printf mn")',
      '(run "printf start and the rest")',
    ],
  },
  {
    name: 'escapes stay in shell-form arguments',
    dockerfile: lines(
      'FROM alpine:3.19',
      'LABEL author Jane \\\\Doe <jane@example.com>\\"',
      '',
      'RUN apk \\add && \\',
      '  apk \\"del foo -q',
      'ADD \\data\\\\" /.cfg',
      '',
      'RUN one \\',
      '',
      'two \\',
      '',
      'three',
      '',
      'CMD [ "\\/opt\\\\\\"/bin/app", "-v", "-x" ]',
    ),
    expected: [
      '(from "alpine:3.19")',
      '(label "author" "Jane \\\\\\\\Doe <jane@example.com>\\\\\\"" "")',
      '(run "apk \\\\add &&   apk \\\\\\"del foo -q")',
      '(add "\\\\data\\\\\\\\\\"" "/.cfg")',
      '(run "one two three")',
      '(cmd "/opt\\\\\\"/bin/app" "-v" "-x")',
    ],
  },
  {
    name: 'ENV legacy and key=value forms keep quotes and escapes',
    dockerfile: lines(
      'FROM debian',
      'ENV color blue',
      'ENV color=blue',
      'ENV color=blue shade=dark',
      'ENV color="light blue"',
      'ENV color=light\\ blue',
      `ENV color="it's 'quoted' here"`,
      `ENV color='say "hi" now'`,
      'ENV color=light\\ blue shade=very\\ dark',
      'ENV color="x\\"y"',
      `ENV color="x\\'y"`,
      `ENV color='x\\'y'`,
      `ENV color='x\\'y''`,
      `ENV color='x\\"y'`,
      `ENV color="''"`,
      'ENV a=1 \\',
      '    b=2 \\',
      '    c="multi \\',
      '           line" \\',
      '    d="esc\\n\\"q\\"" \\',
      '\te="dbl\\\\nslash" \\',
    ),
    expected: [
      '(from "debian")',
      '(env "color" "blue" "")',
      '(env "color" "blue" "=")',
      '(env "color" "blue" "=" "shade" "dark" "=")',
      '(env "color" "\\"light blue\\"" "=")',
      '(env "color" "light\\\\ blue" "=")',
      `(env "color" "\\"it's 'quoted' here\\"" "=")`,
      `(env "color" "'say \\"hi\\" now'" "=")`,
      '(env "color" "light\\\\ blue" "=" "shade" "very\\\\ dark" "=")',
      '(env "color" "\\"x\\\\\\"y\\"" "=")',
      `(env "color" "\\"x\\\\'y\\"" "=")`,
      `(env "color" "'x\\\\'y'" "=")`,
      `(env "color" "'x\\\\'y''" "=")`,
      `(env "color" "'x\\\\\\"y'" "=")`,
      `(env "color" "\\"''\\"" "=")`,
      '(env "a" "1" "=" "b" "2" "=" "c" "\\"multi            line\\"" "=" "d" "\\"esc\\\\n\\\\\\"q\\\\\\"\\"" "=" "e" "\\"dbl\\\\\\\\nslash\\"" "=")',
    ],
  },
  {
    name: 'flags come before the arguments and -- ends them',
    dockerfile: lines(
      'FROM scratch',
      'COPY src /dst/',
      'COPY --owner=me src /dst/',
      'COPY --force=true src /dst/',
      'COPY --owner=me --force=true src /dst/',
      'COPY --force=true -- src /dst/',
      'COPY -- src /dst/',
      'CMD --force [ "x", "y" ]',
      'CMD --force=true -- [ "x", "y" ]',
      'CMD --force -- [ ]',
      'RUN --mount="type=cache,target=/c" --network=\'none\' make',
    ),
    expected: [
      '(from "scratch")',
      '(copy "src" "/dst/")',
      '(copy ["--owner=me"] "src" "/dst/")',
      '(copy ["--force=true"] "src" "/dst/")',
      '(copy ["--owner=me" "--force=true"] "src" "/dst/")',
      '(copy ["--force=true"] "src" "/dst/")',
      '(copy "src" "/dst/")',
      '(cmd ["--force"] "x" "y")',
      '(cmd ["--force=true"] "x" "y")',
      '(cmd ["--force"])',
      '(run ["--mount=type=cache,target=/c" "--network=none"] "make")',
    ],
  },
  {
    name: 'HEALTHCHECK keeps its type word apart from the command',
    dockerfile: lines(
      'FROM debian',
      'HEALTHCHECK',
      'HEALTHCHECK --interval=10s --timeout=2s --retries=5 \\',
      '  CMD /bin/probe --silent',
      'HEALTHCHECK CMD',
      'HEALTHCHECK   CMD   p q',
      'HEALTHCHECK --timeout=2s CMD ["probe"]',
      'HEALTHCHECK CONNECT TCP 8080',
    ),
    expected: [
      '(from "debian")',
      '(healthcheck)',
      '(healthcheck ["--interval=10s" "--timeout=2s" "--retries=5"] "CMD" "/bin/probe --silent")',
      '(healthcheck "CMD")',
      '(healthcheck "CMD" "p q")',
      '(healthcheck ["--timeout=2s"] "CMD" "probe")',
      '(healthcheck "CONNECT" "TCP 8080")',
    ],
  },
  {
    name: 'JSON arrays in any spacing; escapes decoded as JSON',
    dockerfile: lines(
      'CMD []',
      'CMD [""]',
      'CMD ["p"]',
      'CMD ["p","q"]',
      'CMD [ "p", "q" ]',
      'CMD [\t"p",\t"q"\t]',
      'CMD\t[\t"p",\t"q"\t]\t',
      'CMD ["x 1", "♥", "☃", "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000"]',
    ),
    expected: [
      '(cmd)',
      '(cmd "")',
      '(cmd "p")',
      '(cmd "p" "q")',
      '(cmd "p" "q")',
      '(cmd "p" "q")',
      '(cmd "p" "q")',
      '(cmd "x 1" "♥" "☃" "\\" \\\\ / \\b \\f \\n \\r \\t \\x00")',
    ],
  },
  {
    name: 'what is not a valid JSON array is shell form',
    dockerfile: lines(
      `CMD '["echo", "json in a string"]'`,
      'CMD "[\\"echo\\", \\"escaped quotes\\"]"',
      `CMD ['echo','single quotes are not JSON']`,
      'CMD ["echo", "no closing bracket"',
      'CMD ["echo", "no closing quote]',
    ),
    expected: [
      `(cmd "'[\\"echo\\", \\"json in a string\\"]'")`,
      '(cmd "\\"[\\\\\\"echo\\\\\\", \\\\\\"escaped quotes\\\\\\"]\\"")',
      `(cmd "['echo','single quotes are not JSON']")`,
      '(cmd "[\\"echo\\", \\"no closing bracket\\"")',
      '(cmd "[\\"echo\\", \\"no closing quote]")',
    ],
  },
  {
    name: 'tabs separate words; ADD and COPY take JSON or words',
    dockerfile: lines(
      'FROM\tubuntu:24.04',
      'LABEL\tmaintainer\tSome One <one@example.com>',
      '',
      'COPY\t.\t/src/app',
      'ADD\t\t.\t/',
      'ADD\t\tnull /',
      'COPY\tnullfile /tmp',
      'ADD\t\t[ "vimrc", "/tmp" ]',
      'COPY\t[ "bashrc", "/tmp" ]',
      'COPY\t[ "a file", "/tmp" ]',
      'ADD\t\t[ "a file", "/tmp/a file" ]',
      'VOLUME /v/one /v/two\t/v/three',
    ),
    expected: [
      '(from "ubuntu:24.04")',
      '(label "maintainer" "Some One <one@example.com>" "")',
      '(copy "." "/src/app")',
      '(add "." "/")',
      '(add "null" "/")',
      '(copy "nullfile" "/tmp")',
      '(add "vimrc" "/tmp")',
      '(copy "bashrc" "/tmp")',
      '(copy "a file" "/tmp")',
      '(add "a file" "/tmp/a file")',
      '(volume "/v/one" "/v/two" "/v/three")',
    ],
  },
  {
    name: 'ARG words keep their quotes',
    dockerfile: lines('ARG x y=z', 'FROM debian', 'ARG p="1 2" q'),
    expected: ['(arg "x" "y=z")', '(from "debian")', '(arg "p=\\"1 2\\"" "q")'],
  },
  {
    name: 'an escaped escape at the end of a line is not a continuation',
    dockerfile: lines(
      'FROM busybox',
      'ENV A dir',
      'ENV B one\\\\two',
      'ENV C end\\\\with\\\\',
      'ENV D must not join C',
      'ENV E up\\',
      '\\',
      'down',
      'ENV F up\\',
      ' \\',
      'down',
      'ENV G up \\',
      '\\',
      'down',
    ),
    expected: [
      '(from "busybox")',
      '(env "A" "dir" "")',
      '(env "B" "one\\\\\\\\two" "")',
      '(env "C" "end\\\\\\\\with\\\\\\\\" "")',
      '(env "D" "must not join C" "")',
      '(env "E" "updown" "")',
      '(env "F" "up down" "")',
      '(env "G" "up down" "")',
    ],
  },
  {
    name: 'ONBUILD nests the wrapped instruction; comments ending in the escape do not continue',
    dockerfile: lines(
      'FROM busybox:1.36',
      'ONBUILD RUN ["echo", "test"]',
      'ONBUILD RUN echo test',
      'ONBUILD COPY . /',
      '# RUN commands \\',
      '# more comment \\',
      'RUN echo \'1\' && \\',
      '    echo "2"',
      'ENV SCUBA 1 DUBA 3',
      'ENV SCUBA "1 DUBA 3"',
      'USER app:root',
      'EXPOSE 9000 5000 6000',
      'WORKDIR /some dir',
    ),
    expected: [
      '(from "busybox:1.36")',
      '(onbuild (run "echo" "test"))',
      '(onbuild (run "echo test"))',
      '(onbuild (copy "." "/"))',
      '(run "echo \'1\' &&     echo \\"2\\"")',
      '(env "SCUBA" "1 DUBA 3" "")',
      '(env "SCUBA" "\\"1 DUBA 3\\"" "")',
      '(user "app:root")',
      '(expose "9000" "5000" "6000")',
      '(workdir "/some dir")',
    ],
  },
  {
    name: 'a continuation at the end of the file ends the instruction',
    dockerfile: 'FROM alpine:3.19\n\nRUN something \\',
    expected: ['(from "alpine:3.19")', '(run "something")'],
  },
  {
    name: 'tab-indented continuation lines keep their tabs',
    dockerfile: lines('FROM x', 'RUN a \\', '\t&& b \\', '', '    && c'),
    expected: ['(from "x")', '(run "a \\t&& b     && c")'],
  },
];

describe('parser cases (BuildKit testfiles)', () => {
  for (const c of cases) {
    it(c.name, () => {
      expect(dump(c.dockerfile)).toBe(c.expected.join('\n'));
    });
  }
});

describe('escape directive', () => {
  it('switches the escape and continuation character to a backtick', () => {
    const df = lines('#escape = `', '', 'FROM image', 'LABEL who someone@example.com', 'ENV GOPATH `', '\\go');
    expect(dump(df)).toBe(['(from "image")', '(label "who" "someone@example.com" "")', '(env "GOPATH" "\\\\go" "")'].join('\n'));
  });

  it('is ignored after another comment: the backslash stays the escape', () => {
    const df = lines('# A comment first.', '# escape = `', '', 'FROM image', 'ENV GOPATH \\', '\\go');
    expect(dump(df)).toBe(['(from "image")', '(env "GOPATH" "\\\\go" "")'].join('\n'));
  });

  it('applies without a blank line after the directives', () => {
    const df = lines('# escape = `', '# just a comment', 'FROM image', 'ENV GOPATH `', '\\go');
    expect(dump(df)).toBe(['(from "image")', '(env "GOPATH" "\\\\go" "")'].join('\n'));
  });

  it('combines with a syntax directive', () => {
    const df = lines('# syntax = docker/dockerfile', '# escape = `', '', 'FROM `', '    image');
    expect(dump(df)).toBe('(from "image")');
  });

  it('makes the backtick the flag escape too', () => {
    expect(dump(lines('# escape=`', 'FROM x', 'COPY --chown=a`b c\\d /e'))).toBe(
      ['(from "x")', '(copy ["--chown=ab"] "c\\\\d" "/e")'].join('\n'),
    );
  });
});
