import { describe, expect, it } from 'vitest';
import { compileIgnore, parseIgnoreFile } from '../../../builder/context/dockerignore.js';
import { matchGlob, validateGlob } from '../../../builder/context/glob.js';
import { PatternMatcher } from '../../../builder/context/pattern-matcher.js';

// Cases rewritten from moby/patternmatcher's tests and Go's filepath.Match tests.
const single: [string, string, boolean][] = [
  ['**', 'file', true], ['**', 'file/', true], ['**/', 'file', true], ['**/', 'file/', true], ['**', '/', true],
  ['**/', '/', true], ['**', 'dir/file', true], ['**/', 'dir/file', true], ['**', 'dir/file/', true],
  ['**/', 'dir/file/', true], ['**/**', 'dir/file', true], ['**/**', 'dir/file/', true], ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/file/', true], ['dir/**', 'dir/dir2/file', true], ['dir/**', 'dir/dir2/file/', true],
  ['**/dir', 'dir', true], ['**/dir', 'dir/file', true], ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/*', 'dir/dir2/file/', true], ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file/', true], ['**file', 'file', true], ['**file', 'dir/file', true],
  ['**/file', 'dir/file', true], ['**file', 'dir/dir/file', true], ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file', true], ['**/file*', 'dir/dir/file.txt', true], ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/file*.txt', 'dir/dir/file.txt', true], ['**/file*.txt*', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true], ['**/**/*.txt2', 'dir/dir/file.txt', false], ['**/*.txt', 'file.txt', true],
  ['**/**/*.txt', 'file.txt', true], ['a**/*.txt', 'a/file.txt', true], ['a**/*.txt', 'a/dir/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true], ['a/*.txt', 'a/dir/file.txt', false], ['a/*.txt', 'a/file.txt', true],
  ['a/*.txt**', 'a/file.txt', true], ['a[b-d]e', 'ae', false], ['a[b-d]e', 'ace', true], ['a[b-d]e', 'aae', false],
  ['a[^b-d]e', 'aze', true], ['.*', '.foo', true], ['.*', 'foo', false], ['abc.def', 'abcdef', false],
  ['abc.def', 'abc.def', true], ['abc.def', 'abcZdef', false], ['abc?def', 'abcZdef', true], ['abc?def', 'abcdef', false],
  ['a\\\\', 'a\\', true], ['**/foo/bar', 'foo/bar', true], ['**/foo/bar', 'dir/foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true], ['abc/**', 'abc', false], ['abc/**', 'abc/def', true],
  ['abc/**', 'abc/def/ghi', true], ['**/.foo', '.foo', true], ['**/.foo', 'bar.foo', false],
  ['a(b)c/def', 'a(b)c/def', true], ['a(b)c/def', 'a(b)c/xyz', false], ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  ['dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true], ['a\\*b', 'a*b', true],
];

const multi: [string[], string, boolean][] = [
  [['**', '!util/docker/web'], 'util/docker/web/foo', false],
  [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
  [['**', '!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
  [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
  [['*'], 'fileutils.go', true], [['*.go'], 'fileutils.go', true], [['!fileutils.go', '*.go'], 'fileutils.go', true],
  [['docs', '!docs/README.md'], 'docs/README.md', false], [['docs/', '!docs/README.md'], 'docs/README.md', false],
  [['docs/*', '!docs/README.md'], 'docs/README.md', false], [['*.go', '!fileutils.go'], 'fileutils.go', false],
  [[], 'any/path/there', false],
];

/** The walk-style answer: each parent directory is matched first and its state handed down. */
function viaParents(m: PatternMatcher, path: string): boolean {
  const parts = path.split('/');
  let state;
  for (let i = 1; i < parts.length; i++) state = m.matchesWithParent(parts.slice(0, i).join('/'), state).state;
  return m.matchesWithParent(path, state).matched;
}

describe('PatternMatcher (moby/patternmatcher semantics)', () => {
  it.each(single)('%s ~ %s → %s', (pattern, text, pass) => {
    const m = PatternMatcher.compile([pattern]);
    expect(m.matches(text)).toBe(pass);
    expect(viaParents(m, text)).toBe(pass);
    expect(m.matchesWithParent(text, undefined).matched).toBe(pass);
  });

  it.each(multi)('%j ~ %s → %s', (patterns, text, pass) => {
    const m = PatternMatcher.compile(patterns);
    expect(m.matches(text)).toBe(pass);
    expect(viaParents(m, text)).toBe(pass);
  });

  it('rejects a lone "!" and malformed globs, skips blanks, trims and flags exceptions', () => {
    expect(() => PatternMatcher.compile(['!'])).toThrow(/illegal exclusion/);
    expect(() => PatternMatcher.compile(['['])).toThrow(/unclosed/);
    const m = PatternMatcher.compile(['docs', 'config', '', '  !docs/README.md  ']);
    expect(m.patterns).toEqual(['docs', 'config', '!docs/README.md']);
    expect(m.hasExclusions).toBe(true);
    expect(PatternMatcher.compile(['docs']).hasExclusions).toBe(false);
  });

  it('re-includes a child of an excluded directory', () => {
    const m = PatternMatcher.compile(['node_modules', '!node_modules/keep']);
    expect(m.matches('node_modules/x/y.js')).toBe(true);
    expect(m.matches('node_modules/keep/a.js')).toBe(false);
    expect(viaParents(m, 'node_modules/keep/a.js')).toBe(false);
  });
});

// Go's filepath.Match table.
const goMatch: [string, string, boolean | 'bad'][] = [
  ['abc', 'abc', true], ['*', 'abc', true], ['*c', 'abc', true], ['a*', 'a', true], ['a*', 'abc', true],
  ['a*', 'ab/c', false], ['a*/b', 'abc/b', true], ['a*/b', 'a/c/b', false], ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true], ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
  ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false], ['a*b?c*x', 'abxbbxdbxebxczzx', true], ['a*b?c*x', 'abxbbxdbxebxczzy', false],
  ['ab[c]', 'abc', true], ['ab[b-d]', 'abc', true], ['ab[e-g]', 'abc', false], ['ab[^c]', 'abc', false],
  ['ab[^b-d]', 'abc', false], ['ab[^e-g]', 'abc', true], ['a\\*b', 'a*b', true], ['a\\*b', 'ab', false],
  ['a?b', 'a☺b', true], ['a[^a]b', 'a☺b', true], ['a???b', 'a☺b', false], ['a[^a][^a][^a]b', 'a☺b', false],
  ['[a-ζ]*', 'α', true], ['*[a-ζ]', 'A', false], ['a?b', 'a/b', false], ['a*b', 'a/b', false], ['[\\]a]', ']', true],
  ['[\\-]', '-', true], ['[x\\-]', 'x', true], ['[x\\-]', '-', true], ['[x\\-]', 'z', false], ['[\\-x]', 'x', true],
  ['[\\-x]', '-', true], ['[\\-x]', 'a', false], ['[]a]', ']', 'bad'], ['[-]', '-', 'bad'], ['[x-]', 'x', 'bad'],
  ['[-x]', 'x', 'bad'], ['\\', 'a', 'bad'], ['[a-b-c]', 'a', 'bad'], ['[', 'a', 'bad'], ['[^', 'a', 'bad'],
  ['[^bc', 'a', 'bad'], ['a[', 'a', 'bad'], ['*x', 'xxx', true], ['arr[[]0].txt', 'arr[0].txt', true],
];

describe('matchGlob (Go filepath.Match)', () => {
  it.each(goMatch)('%s ~ %s → %s', (pattern, name, want) => {
    if (want === 'bad') {
      expect(() => validateGlob(pattern)).toThrow(/pattern/);
      expect(() => PatternMatcher.compile([pattern])).toThrow();
    } else {
      expect(matchGlob(pattern, name)).toBe(want);
      // The .dockerignore matcher agrees on single-component names.
      if (!name.includes('/')) expect(PatternMatcher.compile([pattern]).matches(name)).toBe(want);
    }
  });
});

describe('.dockerignore parsing', () => {
  it('strips the BOM, comments, blanks and leading slashes, and cleans paths', () => {
    const text = '\uFEFFtest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n  spaced  \r\nx/./y/../z/\n #not-comment';
    expect(parseIgnoreFile(text)).toEqual(['test1', 'test2', 'a/file/here', 'lastfile', '!inverted/abs/path', 'spaced', 'x/z', '#not-comment']);
  });

  it('keeps a lone "!" so compiling reports it', () => {
    expect(parseIgnoreFile('!\n! ')).toEqual(['!', '!']);
    expect(() => compileIgnore('!\n', 'ctx/.dockerignore')).toThrow(/ctx\/\.dockerignore: illegal exclusion pattern/);
  });

  it('matches anchored at the root: "*.md" is only top level, "**/*.md" any depth', () => {
    const m = compileIgnore('*.md\n**/*.log\n/build\n');
    expect(m.matches('README.md')).toBe(true);
    expect(m.matches('docs/README.md')).toBe(false);
    expect(m.matches('a/b/c.log')).toBe(true);
    expect(m.matches('build/out/bin')).toBe(true);
    expect(m.matches('src/build')).toBe(false);
  });
});
