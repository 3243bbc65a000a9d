import { describe, expect, it } from 'vitest';
import { chompHeredoc, heredocBody, heredocsInLine, parseHeredocWord, type Heredoc } from '../../../builder/dockerfile/heredoc.js';
import { parseInstructions } from '../../../builder/dockerfile/parser.js';
import { parseAst } from '../../../builder/dockerfile/scanner.js';
import { thrown } from '../../support/errors.js';

const parse = (text: string) => parseAst(text, { file: 'Dockerfile' });
const doc = (name: string, content: string, extra: Partial<Heredoc> = {}): Heredoc => ({
  name,
  content,
  expand: true,
  chomp: false,
  ...extra,
});

describe('heredocs in the parser', () => {
  it('reads the bodies of every form BuildKit accepts', () => {
    const text = [
      '',
      'FROM alpine:3.19',
      'ENV NAME=me',
      'RUN ls',
      'USER <<INVALID',
      'INVALID',
      'RUN <<EMPTY',
      'EMPTY',
      'RUN 3<<EMPTY2',
      'EMPTY2',
      'RUN "<<NOHEREDOC"',
      'RUN <<INDENT',
      '\tfoo',
      '\tbar',
      'INDENT',
      'RUN <<-UNINDENT',
      '\tbaz',
      '\tquux',
      'UNINDENT',
      'RUN <<-UNINDENT2',
      '\tbaz',
      '\tquux',
      '\tUNINDENT2',
      'RUN <<-EXPAND',
      '\texpand $NAME',
      'EXPAND',
      "RUN <<-'NOEXPAND'",
      "\tdon't expand $NAME",
      'NOEXPAND',
      'RUN <<COMMENT',
      '# internal comment',
      'echo foo bar # trailing comment',
      'COMMENT',
      'RUN --mount=type=cache,target=/foo <<MOUNT',
      'echo hello',
      'MOUNT',
      'COPY <<FILE1 <<FILE2 /dest',
      'content 1',
      'FILE1',
      'content 2',
      'FILE2',
      'COPY <<EOF /quotes',
      '"foo"',
      "'bar'",
      'EOF',
      'COPY <<X <<Y /dest',
      'Y',
      'X',
      'X',
      'Y',
      'RUN <<COMPLEX python3',
      "print('hello world')",
      'COMPLEX',
      'COPY <<file.txt /dest',
      'hello world',
      'file.txt',
      "RUN <<eo'f'",
      'echo foo',
      'eof',
      "RUN <<eo\\'f",
      'echo foo',
      "eo'f",
      "RUN <<'e'o\\'f",
      'echo foo',
      "eo'f",
      "RUN <<'one two'",
      'echo bar',
      'one two',
      'RUN <<$EOF',
      '$EOF',
      'RUN <<  EOF',
      'EOF',
      'RUN <<  EOF  > foo',
      'EOF',
      '\t',
    ].join('\n');
    const expected: (Heredoc[] | [])[] = [
      [], // ENV
      [], // RUN ls
      [], // USER <<INVALID: USER takes no heredoc
      [], // INVALID: an (unknown) instruction of its own
      [doc('EMPTY', '')],
      [doc('EMPTY2', '', { fd: 3 })],
      [],
      [doc('INDENT', '\tfoo\n\tbar\n')],
      [doc('UNINDENT', '\tbaz\n\tquux\n', { chomp: true })],
      [doc('UNINDENT2', '\tbaz\n\tquux\n', { chomp: true })],
      [doc('EXPAND', '\texpand $NAME\n', { chomp: true })],
      [doc('NOEXPAND', "\tdon't expand $NAME\n", { chomp: true, expand: false })],
      [doc('COMMENT', '# internal comment\necho foo bar # trailing comment\n')],
      [doc('MOUNT', 'echo hello\n')],
      [doc('FILE1', 'content 1\n'), doc('FILE2', 'content 2\n')],
      [doc('EOF', '"foo"\n\'bar\'\n')],
      [doc('X', 'Y\n'), doc('Y', 'X\n')],
      [doc('COMPLEX', "print('hello world')\n")],
      [doc('file.txt', 'hello world\n')],
      [doc('eof', 'echo foo\n', { expand: false })],
      [doc("eo'f", 'echo foo\n')],
      [doc("eo'f", 'echo foo\n', { expand: false })],
      [doc('one two', 'echo bar\n', { expand: false })],
      [doc('$EOF', '')],
      [doc('EOF', '')],
      [doc('EOF', '')],
    ];
    const nodes = parse(text).nodes;
    expect(nodes.slice(1).map((n) => n.heredocs)).toEqual(expected);
    expect(nodes[6]?.location).toMatchObject({ line: 9, endLine: 10 });
  });

  it('never reads heredocs in JSON form', () => {
    const nodes = parse(['FROM alpine', 'RUN ["whoami"]', 'RUN ["<<EOF"]', `RUN ["<<'EOF'"]`, 'RUN echo'].join('\n')).nodes;
    expect(nodes.slice(1).map((n) => n.heredocs)).toEqual([[], [], [], []]);
    expect(nodes[4]?.args).toEqual(['echo']);
  });

  it('reads the body of a heredoc opened in an ONBUILD trigger', () => {
    const node = parse('FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\nRUN after').nodes[1];
    expect(node?.heredocs).toEqual([doc('EOF', 'echo hi\n')]);
    expect(node?.child?.heredocs).toEqual([doc('EOF', 'echo hi\n')]);
  });

  it('refuses an unterminated heredoc', () => {
    const err = thrown(() => parse('FROM x\nRUN <<EOF\necho never ends\n'));
    expect(err.message).toBe('Dockerfile:2:5: unterminated heredoc: add a line "EOF" to end the here-document');
  });

  it('sees no heredoc on a line with an unbalanced quote, as BuildKit', () => {
    const nodes = parse("FROM x\nRUN <<'EOF\nEOF").nodes;
    expect(nodes[1]?.heredocs).toEqual([]);
    expect(nodes[2]?.command).toBe('EOF');
  });
});

describe('heredoc words', () => {
  it('recognises the delimiter forms', () => {
    for (const src of ['<<EOF', "<<'EOF'", '<<"EOF"', '<<-EOF', "<<-'EOF'", '<<-"EOF"', '<<EO"F"', '<< EOF', '<<- EOF']) {
      expect(parseHeredocWord(src)?.name).toBe('EOF');
    }
    expect(parseHeredocWord('<<-"EOF"')).toEqual({ name: 'EOF', expand: false, chomp: true });
    expect(parseHeredocWord('12<<EOF')).toEqual({ name: 'EOF', expand: true, chomp: false, fd: 12 });
  });

  it('ignores what is not a heredoc', () => {
    for (const src of ['', 'EOF', '<<', '<<-', '<EOF', '<<<EOF', '<<EOF sh']) expect(parseHeredocWord(src)).toBeUndefined();
  });

  it('throws on an unterminated quote', () => {
    for (const src of ["<<'EOF", '<<"EOF', "<<EOF'", '<<EOF"']) expect(() => parseHeredocWord(src)).toThrow(/unexpected end/);
  });

  it('finds every heredoc on a line, none inside quotes', () => {
    const names = (line: string) => heredocsInLine(line).map((h) => h.name);
    expect(names('RUN <<EOF')).toEqual(['EOF']);
    expect(names('RUN <<-EOF')).toEqual(['EOF']);
    // BuildKit's line lexer splits `<<-` from `EOF` here, so the line opens no heredoc (unlike `<< EOF`).
    expect(names('RUN <<- EOF')).toEqual([]);
    expect(names('RUN << EOF')).toEqual(['EOF']);
    expect(names('RUN << -EOF')).toEqual(['-EOF']);
    expect(names("RUN <<'EOF'")).toEqual(['EOF']);
    expect(names('RUN 4<<EOF')).toEqual(['EOF']);
    expect(names('RUN <<EOF <<EOF2')).toEqual(['EOF', 'EOF2']);
    expect(names("RUN '<<EOF'")).toEqual([]);
    expect(names('RUN "<<EOF"')).toEqual([]);
    expect(names('RUN echo "unbalanced <<EOF')).toEqual([]);
    expect(names('RUN cat <<EOF > ${OUT:-/tmp/x}')).toEqual(['EOF']);
  });

  it('strips leading tabs for <<-', () => {
    expect(chompHeredoc('\thello\n\t\tworld\n  spaced\n')).toBe('hello\nworld\n  spaced\n');
    expect(heredocBody(doc('E', '\tx\n', { chomp: true }))).toBe('x\n');
    expect(heredocBody(doc('E', '\tx\n'))).toBe('\tx\n');
  });
});

describe('heredocs in instructions', () => {
  const decode = (text: string) => parseInstructions(text, { file: 'Dockerfile' })[0];

  it('COPY separates inline files from source paths', () => {
    expect(decode('COPY /foo /bar')).toMatchObject({ kind: 'COPY', sources: ['/foo'], heredocs: [], dest: '/bar' });
    expect(decode('COPY <<EOF /bar\nEOF')).toMatchObject({ sources: [], heredocs: [doc('EOF', '')], dest: '/bar' });
    expect(decode('COPY <<EOF /bar\nTESTING\nEOF')).toMatchObject({ heredocs: [doc('EOF', 'TESTING\n')] });
    const chomped = decode('COPY <<-EOF /bar\n\tTESTING\nEOF');
    expect(chomped?.kind === 'COPY' && chomped.heredocs.map(heredocBody)).toEqual(['TESTING\n']);
    expect(decode("COPY <<'EOF' /bar\nTESTING\nEOF")).toMatchObject({ heredocs: [doc('EOF', 'TESTING\n', { expand: false })] });
    expect(decode('COPY <<EOF1 <<EOF2 /bar\nfirst\nEOF1\nsecond\nEOF2')).toMatchObject({
      heredocs: [doc('EOF1', 'first\n'), doc('EOF2', 'second\n')],
    });
    expect(decode('COPY <<EOF foo.txt /bar\ninline\nEOF')).toMatchObject({ sources: ['foo.txt'], heredocs: [doc('EOF', 'inline\n')] });
    expect(decode('COPY <<EOF /quotes\n"quotes"\nEOF')).toMatchObject({ heredocs: [doc('EOF', '"quotes"\n')] });
  });

  it('refuses a heredoc as COPY destination', () => {
    expect(thrown(() => decode('COPY /foo <<EOF\nEOF')).message).toBe('Dockerfile:1:11: COPY cannot accept a heredoc as a destination');
  });

  it('RUN keeps the opening line as the shell command', () => {
    expect(decode('RUN ["ls", "/"]')).toMatchObject({ command: { form: 'exec', argv: ['ls', '/'] }, heredocs: [] });
    expect(decode('RUN ["<<EOF"]')).toMatchObject({ command: { form: 'exec', argv: ['<<EOF'] }, heredocs: [] });
    expect(decode('RUN ls /')).toMatchObject({ command: { form: 'shell', text: 'ls /' }, heredocs: [] });
    expect(decode('RUN <<EOF\nls /\nwhoami\nEOF')).toMatchObject({
      command: { form: 'shell', text: '<<EOF' },
      heredocs: [doc('EOF', 'ls /\nwhoami\n')],
    });
    expect(decode(`RUN <<'EOF' | python\nprint("hello")\nprint("world")\nEOF`)).toMatchObject({
      command: { form: 'shell', text: "<<'EOF' | python" },
      heredocs: [doc('EOF', 'print("hello")\nprint("world")\n', { expand: false })],
    });
    expect(decode('RUN <<-EOF\n\techo test\nEOF')).toMatchObject({
      command: { form: 'shell', text: '<<-EOF' },
      heredocs: [doc('EOF', '\techo test\n', { chomp: true })],
    });
  });
});
