// Vectors from github.com/distribution/reference (reference_test.go, normalize_test.go, regexp_test.go), restated as
// data. Kiln's parseReference normalises as ParseNormalizedNamed does, so the expected values below are the
// normalised forms; where Kiln deliberately differs from upstream the row says so.
import { describe, expect, it } from 'vitest';
import { isKilnError } from '../../oci/errors.js';
import {
  DOMAIN_REGEXP,
  IDENTIFIER_REGEXP,
  NAME_REGEXP,
  REFERENCE_REGEXP,
  TAG_REGEXP,
} from '../../oci/reference-grammar.js';
import {
  familiarName,
  familiarString,
  formatReference,
  formatRepository,
  isLoopbackRegistry,
  isValidRepositoryPath,
  isValidTag,
  parseReference,
  parseRepository,
  referenceWithDigest,
  referenceWithoutTag,
  referenceWithTag,
} from '../../oci/reference.js';

const F64 = 'f'.repeat(64);
const SHA_F = `sha256:${F64}`;
const SHA_BE = 'sha256:be178c0543eb17f5f3043021c9e5fcf30285e557a4fc309cce97ff9ca6182912';
const SHA_DB = 'sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
const SHA_E6 = 'sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582';
const SHA_86 = 'sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa';
const SHA512_F = `sha512:${'f'.repeat(128)}`;

/** Parses and returns the canonical string. */
const canonical = (input: string): string => formatReference(parseReference(input));

/** The REFERENCE_INVALID message parseReference throws for `input` (fails the test when it parses). */
function rejection(input: string, parse: (s: string) => unknown = parseReference): string {
  try {
    parse(input);
  } catch (err) {
    if (!isKilnError(err, 'REFERENCE_INVALID')) throw err;
    return err.message;
  }
  throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
}

describe('grammar regular expressions (regexp_test.go)', () => {
  // [input, matches]
  const domains: Array<[string, boolean]> = [
    ['test.com', true], ['test.com:10304', true], ['test.com:http', false], ['localhost', true],
    ['localhost:8080', true], ['a', true], ['a.b', true], ['ab.cd.com', true], ['a-b.com', true],
    ['-ab.com', false], ['ab-.com', false], ['ab.c-om', true], ['ab.-com', false], ['ab.com-', false],
    ['0101.com', true], ['001a.com', true], ['b.gbc.io:443', true], ['b.gbc.io', true], ['xn--n3h.com', true],
    ['Asdf.com', true], ['192.168.1.1:75050', true], ['192.168.1.1:750050', true], ['[fd00:1:2::3]:75050', true],
    ['[fd00:1:2::3]75050', false], ['[fd00:1:2::3]::75050', false], ['[fd00:1:2::3%eth0]:75050', false],
    ['[fd00123123123]:75050', true], ['[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:75050', true],
    ['[2001:0db8:85a3:0000:0000:8a2e:0370:7334]:750505', true], ['fd00:1:2::3:75050', false],
  ];
  it.each(domains)('domain %s → %s', (input, match) => {
    expect(DOMAIN_REGEXP.test(input)).toBe(match);
  });

  // [input, [domain, remote] | null for no match]
  const names: Array<[string, [string, string] | null]> = [
    ['', null], ['short', ['', 'short']], ['simple/name', ['simple', 'name']], ['library/ubuntu', ['library', 'ubuntu']],
    ['docker/stevvooe/app', ['docker', 'stevvooe/app']],
    ['aa/aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb', ['aa', 'aa/aa/aa/aa/aa/aa/aa/aa/bb/bb/bb/bb/bb/bb']],
    ['aa/aa/bb/bb/bb', ['aa', 'aa/bb/bb/bb']], ['a/a/a/a', ['a', 'a/a/a']], ['a/a/a/a/', null], ['a//a/a', null],
    ['a', ['', 'a']], ['a/aa', ['a', 'aa']], ['a/aa/a', ['a', 'aa/a']], ['foo.com', ['', 'foo.com']], ['foo.com/', null],
    ['foo.com:8080/bar', ['foo.com:8080', 'bar']], ['foo.com:http/bar', null], ['foo.com/bar', ['foo.com', 'bar']],
    ['foo.com/bar/baz', ['foo.com', 'bar/baz']], ['localhost:8080/bar', ['localhost:8080', 'bar']],
    ['sub-dom1.foo.com/bar/baz/quux', ['sub-dom1.foo.com', 'bar/baz/quux']], ['blog.foo.com/bar/baz', ['blog.foo.com', 'bar/baz']],
    ['a^a', null], ['aa/asdf$$^/aa', null], ['asdf$$^/aa', null], ['aa-a/a', ['aa-a', 'a']],
    [`${'a/'.repeat(128)}a`, ['a', `${'a/'.repeat(127)}a`]], ['a-/a/a/a', null], ['foo.com/a-/a/a', null], ['-foo/bar', null],
    ['foo/bar-', null], ['foo-/bar', null], ['foo/-bar', null], ['_foo/bar', null], ['foo_bar', ['', 'foo_bar']],
    ['foo_bar.com', ['', 'foo_bar.com']], ['foo_bar.com:8080', null], ['foo_bar.com:8080/app', null],
    ['foo.com/foo_bar', ['foo.com', 'foo_bar']], ['____/____', null], ['_docker/_docker', null], ['docker_/docker_', null],
    ['b.gcr.io/test.example.com/my-app', ['b.gcr.io', 'test.example.com/my-app']], ['xn--n3h.com/myimage', ['xn--n3h.com', 'myimage']],
    ['xn--7o8h.com/myimage', ['xn--7o8h.com', 'myimage']], ['example.com/xn--7o8h.com/myimage', ['example.com', 'xn--7o8h.com/myimage']],
    ['example.com/some_separator__underscore/myimage', ['example.com', 'some_separator__underscore/myimage']],
    ['example.com/__underscore/myimage', null], ['example.com/..dots/myimage', null], ['example.com/.dots/myimage', null],
    ['example.com/nodouble..dots/myimage', null], ['docker./docker', null], ['.docker/docker', null], ['docker-/docker', null],
    ['-docker/docker', null], ['do..cker/docker', null], ['do__cker:8080/docker', null], ['do__cker/docker', ['', 'do__cker/docker']],
    ['registry.io/foo/project--id.module--name.ver---sion--name', ['registry.io', 'foo/project--id.module--name.ver---sion--name']],
    ['Asdf.com/foo/bar', ['Asdf.com', 'foo/bar']], ['Foo/FarB', null],
  ];
  it.each(names)('name %s → %j', (input, want) => {
    const m = NAME_REGEXP.exec(input);
    expect(m === null ? null : [m[1] ?? '', m[2]]).toEqual(want);
  });

  // [input, [name, tag, digest] | null]
  const references: Array<[string, [string, string, string] | null]> = [
    ['registry.com:8080/myapp:tag', ['registry.com:8080/myapp', 'tag', '']],
    [`registry.com:8080/myapp@${SHA_BE}`, ['registry.com:8080/myapp', '', SHA_BE]],
    [`registry.com:8080/myapp:tag2@${SHA_BE}`, ['registry.com:8080/myapp', 'tag2', SHA_BE]],
    ['registry.com:8080/myapp@sha256:badbadbadbad', null], ['registry.com:8080/myapp:invalid~tag', null],
    ['bad_hostname.com:8080/myapp:tag', null],
    [`localhost:8080@${SHA_BE}`, ['localhost', '8080', SHA_BE]], // "localhost" is the name, "8080" its tag
    [`localhost:8080/name@${SHA_BE}`, ['localhost:8080/name', '', SHA_BE]], [`localhost:http/name@${SHA_BE}`, null],
    [`localhost@${SHA_BE}`, ['localhost', '', SHA_BE]], ['registry.com:8080/myapp@bad', null], ['registry.com:8080/myapp@2bad', null],
  ];
  it.each(references)('reference %s → %j', (input, want) => {
    const m = REFERENCE_REGEXP.exec(input);
    expect(m === null ? null : [m[1], m[2] ?? '', m[3] ?? '']).toEqual(want);
  });

  const identifiers: Array<[string, boolean]> = [
    ['da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821', true],
    ['7EC43B381E5AEFE6E04EFB0B3F0693FF2A4A50652D64AEC573905F2DB5889A1C', false],
    ['da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf', false],
    ['sha256:da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf9821', false],
    ['da304e823d8ca2b9d863a3c897baeb852ba21ea9a9f1414736394ae7fcaf98218482', false],
  ];
  it.each(identifiers)('identifier %s → %s', (input, match) => {
    expect(IDENTIFIER_REGEXP.test(input)).toBe(match);
  });

  it('tag grammar allows 128 characters and no more', () => {
    expect(TAG_REGEXP.test('a'.repeat(128))).toBe(true);
    expect(TAG_REGEXP.test('a'.repeat(129))).toBe(false);
    expect(TAG_REGEXP.test('_x.Y-9')).toBe(true);
    expect(TAG_REGEXP.test('.x')).toBe(false);
  });

  it('stays fast on long hostile input', () => {
    const start = performance.now();
    for (const s of [`${'a-'.repeat(20000)}!`, `${'a.'.repeat(20000)}/`, `${'a__'.repeat(20000)}_`]) {
      DOMAIN_REGEXP.test(s);
      NAME_REGEXP.test(s);
      REFERENCE_REGEXP.test(s);
    }
    expect(performance.now() - start).toBeLessThan(2000);
  });
});

describe('parseReference: reference_test.go vectors, normalised', () => {
  // [input, canonical form after normalisation]
  const valid: Array<[string, string]> = [
    ['test_com', 'docker.io/library/test_com:latest'],
    ['test.com:tag', 'docker.io/library/test.com:tag'],
    ['test.com:5000', 'docker.io/library/test.com:5000'], // a single component is a name, never a registry
    ['test.com/repo:tag', 'test.com/repo:tag'],
    ['test:5000/repo', 'test:5000/repo:latest'],
    ['test:5000/repo:tag', 'test:5000/repo:tag'],
    [`test:5000/repo@${SHA_F}`, `test:5000/repo@${SHA_F}`],
    [`test:5000/repo:tag@${SHA_F}`, `test:5000/repo:tag@${SHA_F}`],
    [`validname@${SHA512_F}`, `docker.io/library/validname@${SHA512_F}`], // upstream's test leaves sha512 unregistered
    ['lowercase:Uppercase', 'docker.io/library/lowercase:Uppercase'],
    [`${'a/'.repeat(127)}a:tag-puts-this-over-max`, `docker.io/${'a/'.repeat(127)}a:tag-puts-this-over-max`],
    ['sub-dom1.foo.com/bar/baz/quux', 'sub-dom1.foo.com/bar/baz/quux:latest'],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', 'sub-dom1.foo.com/bar/baz/quux:some-long-tag'],
    ['b.gcr.io/test.example.com/my-app:test.example.com', 'b.gcr.io/test.example.com/my-app:test.example.com'],
    ['xn--n3h.com/myimage:xn--n3h.com', 'xn--n3h.com/myimage:xn--n3h.com'],
    [`xn--7o8h.com/myimage:xn--7o8h.com@${SHA_F}`, `xn--7o8h.com/myimage:xn--7o8h.com@${SHA_F}`],
    ['foo_bar.com:8080', 'docker.io/library/foo_bar.com:8080'],
    ['foo/foo_bar.com:8080', 'docker.io/foo/foo_bar.com:8080'],
    ['192.168.1.1', 'docker.io/library/192.168.1.1:latest'],
    ['192.168.1.1:tag', 'docker.io/library/192.168.1.1:tag'],
    ['192.168.1.1:5000', 'docker.io/library/192.168.1.1:5000'],
    ['192.168.1.1/repo', '192.168.1.1/repo:latest'],
    ['192.168.1.1:5000/repo', '192.168.1.1:5000/repo:latest'],
    ['192.168.1.1:5000/repo:5050', '192.168.1.1:5000/repo:5050'],
    ['[2001:db8::1]/repo', '[2001:db8::1]/repo:latest'],
    ['[2001:db8:1:2:3:4:5:6]/repo:tag', '[2001:db8:1:2:3:4:5:6]/repo:tag'],
    ['[2001:db8::1]:5000/repo', '[2001:db8::1]:5000/repo:latest'],
    ['[2001:db8::1]:5000/repo:tag', '[2001:db8::1]:5000/repo:tag'],
    [`[2001:db8::1]:5000/repo@${SHA_F}`, `[2001:db8::1]:5000/repo@${SHA_F}`],
    [`[2001:db8::1]:5000/repo:tag@${SHA_F}`, `[2001:db8::1]:5000/repo:tag@${SHA_F}`],
    ['[2001:db8::]:5000/repo', '[2001:db8::]:5000/repo:latest'],
    ['[::1]:5000/repo', '[::1]:5000/repo:latest'],
    [`example.com/${'a'.repeat(255)}:tag`, `example.com/${'a'.repeat(255)}:tag`], // the registry is not counted
    ['example.com:8000/named:tagged', 'example.com:8000/named:tagged'],
    ['other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112', 'other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112'],
  ];
  it.each(valid)('%s → %s', (input, want) => {
    expect(canonical(input)).toBe(want);
  });

  // [input, what the message must say]
  const invalid: Array<[string, string]> = [
    ['', 'the name is empty'],
    [':justtag', 'the repository name is empty'],
    [`@${SHA_F}`, 'the repository name is empty'],
    ['repo@sha256:ffffffffffffffffffffffffffffffffff', 'expected 64 lowercase hex characters'],
    [`validname@invaliddigest:${F64}`, 'unsupported digest algorithm "invaliddigest"'],
    ['Uppercase:tag', 'repository name must be lowercase'],
    ['test:5000/Uppercase/lowercase:tag', 'repository name must be lowercase'],
    [`domain/${'a'.repeat(256)}:tag`, 'the repository name is 263 characters long; the limit is 255'],
    ['aa/asdf$$^/aa', 'repository path component "asdf$$^" is not valid'],
    ['[2001:db8::1]', 'an IPv6 registry needs a repository after it'],
    ['[2001:db8::1]:5000', 'an IPv6 registry needs a repository after it'],
    ['[2001:db8::1]:tag', 'an IPv6 registry needs a repository after it'],
    ['[fe80::1%eth0]:5000/repo', 'IPv6 zone identifier'],
    ['[fe80::1%@invalidzone]:5000/repo', 'IPv6 zone identifier'],
    ['registry.com:8080/myapp:invalid~tag', 'tag "invalid~tag" is not valid'],
    ['bad_hostname.com:8080/myapp:tag', 'registry "bad_hostname.com:8080" is not a valid host[:port]'],
    [`localhost:http/name@${SHA_BE}`, 'registry "localhost:http" is not a valid host[:port]'],
  ];
  it.each(invalid)('%j is rejected: %s', (input, why) => {
    const message = rejection(input);
    expect(message).toContain(why);
    expect(message.startsWith(`invalid reference ${JSON.stringify(input.length > 200 ? `${input.slice(0, 200)}…` : input)}: `)).toBe(true);
  });
});

describe('parseReference: normalize_test.go vectors', () => {
  const validNames = [
    'docker/docker', 'library/debian', 'debian', 'localhost/library/debian', 'localhost/debian', 'docker.io/docker/docker',
    'docker.io/library/debian', 'docker.io/debian', 'index.docker.io/docker/docker', 'index.docker.io/library/debian',
    'index.docker.io/debian', '127.0.0.1:5000/docker/docker', '127.0.0.1:5000/library/debian', '127.0.0.1:5000/debian',
    '192.168.0.1', '192.168.0.1:80', '192.168.0.1:8/debian', '192.168.0.2:25000/debian',
    'thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev', '[fc00::1]:5000/docker', '[fc00::1]:5000/docker/docker',
    '[fc00:1:2:3:4:5:6:7]:5000/library/debian', 'docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    // remote names (TestValidateRemoteName)
    'docker-rules/docker', 'docker---rules/docker', 'doc/docker', 'd/docker', 'jess/t', 'dock__er/docker',
  ];
  it.each(validNames)('%s is valid', (input) => {
    expect(() => parseReference(input)).not.toThrow();
  });

  const invalidNames = [
    'https://github.com/docker/docker', 'docker/Docker', '-docker', '-docker/docker', '-docker.io/docker/docker',
    'docker///docker', 'docker.io/docker/Docker', 'docker.io/docker///docker', '[fc00::1]', '[fc00::1]:5000',
    'fc00::1:5000/debian', '[fe80::1%eth0]:5000/debian', '[2001:db8:3:4::192.0.2.33]:5000/debian',
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    // remote names (TestValidateRemoteName)
    'docker-/docker', '-docker-/docker', '____/____', '_docker/_docker', 'dock..er/docker', 'dock_.er/docker',
    'dock-.er/docker', 'docker/',
    `${Array(4).fill('this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255').join('_')}/docker`,
  ];
  it.each(invalidNames)('%s is invalid', (input) => {
    expect(rejection(input)).toMatch(/^invalid reference ".*": \S/);
  });

  // Upstream reads an uppercase first component as a registry (its own FIXME calls this wrong); Kiln only counts
  // `.`, `:` or `localhost`, so these are lowercase errors instead of references to a host named "Foo".
  it.each(['LOCALDOMAIN/library/debian', 'LOCALDOMAIN/debian', 'Docker/docker', 'DOCKER/docker', 'Foo/bar', 'FOO/bar'])(
    '%s is rejected as not lowercase (deliberate difference from upstream)',
    (input) => {
      expect(rejection(input)).toBe(`invalid reference ${JSON.stringify(input)}: repository name must be lowercase`);
    },
  );

  // TestParseRepositoryInfo: [familiar, full, ambiguous spellings, registry, repository]
  const infos: Array<[string, string, string[], string, string]> = [
    ['localhost/fooo', 'localhost/fooo', [], 'localhost', 'fooo'],
    ['localhost/fooo/bar', 'localhost/fooo/bar', [], 'localhost', 'fooo/bar'],
    ['fooo/bar', 'docker.io/fooo/bar', ['index.docker.io/fooo/bar'], 'docker.io', 'fooo/bar'],
    ['ubuntu', 'docker.io/library/ubuntu', ['library/ubuntu'], 'docker.io', 'library/ubuntu'],
    ['nonlibrary/ubuntu', 'docker.io/nonlibrary/ubuntu', [], 'docker.io', 'nonlibrary/ubuntu'],
    ['other/library', 'docker.io/other/library', [], 'docker.io', 'other/library'],
    ['127.0.0.1:8000/private/moonbase', '127.0.0.1:8000/private/moonbase', [], '127.0.0.1:8000', 'private/moonbase'],
    ['127.0.0.1:8000/privatebase', '127.0.0.1:8000/privatebase', [], '127.0.0.1:8000', 'privatebase'],
    ['example.com/private/moonbase', 'example.com/private/moonbase', [], 'example.com', 'private/moonbase'],
    ['example.com/privatebase', 'example.com/privatebase', [], 'example.com', 'privatebase'],
    ['example.com:8000/private/moonbase', 'example.com:8000/private/moonbase', [], 'example.com:8000', 'private/moonbase'],
    ['example.com:8000/privatebasee', 'example.com:8000/privatebasee', [], 'example.com:8000', 'privatebasee'],
    ['ubuntu-12.04-base', 'docker.io/library/ubuntu-12.04-base', ['index.docker.io/library/ubuntu-12.04-base'], 'docker.io', 'library/ubuntu-12.04-base'],
    ['foo', 'docker.io/library/foo', ['docker.io/foo'], 'docker.io', 'library/foo'],
    ['library/foo/bar', 'docker.io/library/foo/bar', [], 'docker.io', 'library/foo/bar'],
    ['store/foo/bar', 'docker.io/store/foo/bar', [], 'docker.io', 'store/foo/bar'],
  ];
  it.each(infos.flatMap(([familiar, full, ambiguous, registry, repository]) =>
    [familiar, full, ...ambiguous].map((input) => [input, familiar, full, registry, repository] as const),
  ))('%s → familiar %s, full %s', (input, familiar, full, registry, repository) => {
    const repo = parseRepository(input);
    expect(repo).toEqual({ registry, repository });
    expect(familiarName(repo)).toBe(familiar);
    expect(formatRepository(repo)).toBe(full);
    expect(parseReference(input)).toEqual({ registry, repository, tag: 'latest' });
  });

  it('keeps both tag and digest (TestParseReferenceWithTagAndDigest)', () => {
    const short = `busybox:latest@${SHA_86}`;
    const ref = parseReference(short);
    expect(ref).toEqual({ registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: SHA_86 });
    expect(formatReference(ref)).toBe(`docker.io/library/${short}`);
    expect(familiarString(ref)).toBe(short);
  });

  // TestParseAnyReference (named cases) and TestParseDockerRef; Kiln keeps a tag next to a digest
  const dockerRefs: Array<[string, string]> = [
    ['redis', 'docker.io/library/redis:latest'],
    ['redis:latest', 'docker.io/library/redis:latest'],
    ['docker.io/library/redis:latest', 'docker.io/library/redis:latest'],
    [`redis@${SHA_DB}`, `docker.io/library/redis@${SHA_DB}`],
    [`docker.io/library/redis@${SHA_DB}`, `docker.io/library/redis@${SHA_DB}`],
    ['dmcgowan/myapp', 'docker.io/dmcgowan/myapp:latest'],
    ['dmcgowan/myapp:latest', 'docker.io/dmcgowan/myapp:latest'],
    ['docker.io/mcgowan/myapp:latest', 'docker.io/mcgowan/myapp:latest'],
    [`dmcgowan/myapp@${SHA_DB}`, `docker.io/dmcgowan/myapp@${SHA_DB}`],
    [`docker.io/dmcgowan/myapp@${SHA_DB}`, `docker.io/dmcgowan/myapp@${SHA_DB}`],
    ['dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9', 'docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest'],
    ['dbcc1', 'docker.io/library/dbcc1:latest'],
    ['busybox', 'docker.io/library/busybox:latest'],
    [`busybox@${SHA_E6}`, `docker.io/library/busybox@${SHA_E6}`],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox:latest', 'docker.io/library/busybox:latest'],
    ['library/busybox:latest', 'docker.io/library/busybox:latest'],
    ['gcr.io/library/busybox', 'gcr.io/library/busybox:latest'],
    [`gcr.io/library/busybox:latest@${SHA_E6}`, `gcr.io/library/busybox:latest@${SHA_E6}`],
  ];
  it.each(dockerRefs)('%s → %s', (input, want) => {
    expect(canonical(input)).toBe(want);
    expect(canonical(want)).toBe(want); // the canonical form parses back to itself
  });

  it.each([SHA_DB, SHA_DB.slice('sha256:'.length)])('a bare digest or image ID %s names no repository', (input) => {
    expect(rejection(input)).toMatch(/digest alone names no repository|is an image ID, not a repository name/);
  });

  // TestNormalizedSplitHostname and TestDomainAndPath: [input, registry, repository]
  const splits: Array<[string, string, string]> = [
    ['test.com/foo', 'test.com', 'foo'], ['test_com/foo', 'docker.io', 'test_com/foo'],
    ['docker/migrator', 'docker.io', 'docker/migrator'], ['test.com:8080/foo', 'test.com:8080', 'foo'],
    ['test-com:8080/foo', 'test-com:8080', 'foo'], ['test:8080/foo', 'test:8080', 'foo'], ['foo', 'docker.io', 'library/foo'],
    ['xn--n3h.com/foo', 'xn--n3h.com', 'foo'], ['xn--n3h.com:18080/foo', 'xn--n3h.com:18080', 'foo'],
    ['docker.io/foo', 'docker.io', 'library/foo'], ['docker.io/library/foo', 'docker.io', 'library/foo'],
    ['docker.io/library/foo/bar', 'docker.io', 'library/foo/bar'], ['Asdf.com/foo/bar', 'Asdf.com', 'foo/bar'],
  ];
  it.each(splits)('%s → registry %s, repository %s', (input, registry, repository) => {
    expect(parseRepository(input)).toEqual({ registry, repository });
  });
});

describe('limits and messages', () => {
  it('accepts a 255-character repository path and rejects 256, after normalisation', () => {
    expect(parseReference(`x.io/${'a'.repeat(255)}`).repository).toHaveLength(255);
    expect(rejection(`x.io/${'a'.repeat(256)}`)).toContain('256 characters long; the limit is 255');
    expect(parseReference(`${'a'.repeat(247)}`).repository).toHaveLength(255); // library/ + 247
    expect(rejection(`${'a'.repeat(248)}`)).toContain('the repository name is 256 characters long');
  });

  it('accepts a 128-character tag and rejects 129', () => {
    expect(parseReference(`alpine:${'t'.repeat(128)}`).tag).toHaveLength(128);
    expect(rejection(`alpine:${'t'.repeat(129)}`)).toContain('the tag is 129 characters long; the limit is 128');
  });

  it.each([
    ['Foo/bar', 'invalid reference "Foo/bar": repository name must be lowercase'],
    ['alpine:', 'invalid reference "alpine:": the tag after ":" is empty'],
    ['alpine@', 'invalid reference "alpine@": the digest after "@" is empty'],
    ['alpine:-x', 'invalid reference "alpine:-x": tag "-x" is not valid: use letters, digits, "_", "." and "-", not starting with "." or "-"'],
    ['alpine latest', 'invalid reference "alpine latest": it contains whitespace'],
    ['https://ghcr.io/a/b', 'invalid reference "https://ghcr.io/a/b": a reference has no URL scheme; drop "https://"'],
    ['localhost:99999/a', 'invalid reference "localhost:99999/a": registry port 99999 is out of range (1-65535)'],
    ['fc00::1:5000/debian', 'invalid reference "fc00::1:5000/debian": registry "fc00::1:5000" looks like an IPv6 address: put it in brackets, e.g. [::1]:5000'],
    ['docker///docker', 'invalid reference "docker///docker": repository path "docker///docker" has an empty component (leading, trailing or double "/")'],
    [`a@sha1:${'f'.repeat(40)}`, `invalid reference "a@sha1:${'f'.repeat(40)}": unsupported digest algorithm "sha1" in sha1:${'f'.repeat(40)}: use sha256 or sha512`],
  ])('%s → %s', (input, message) => {
    expect(rejection(input)).toBe(message);
  });

  it('cuts a huge input short in the message', () => {
    const message = rejection(`${'a'.repeat(5000)}!`);
    expect(message).toContain('characters long; no valid reference exceeds');
    expect(message.length).toBeLessThan(400);
  });

  it('keeps the digest error as the cause', () => {
    try {
      parseReference('a@sha256:abc');
      expect.unreachable();
    } catch (err) {
      expect(isKilnError(err, 'REFERENCE_INVALID') && isKilnError(err.cause, 'DIGEST_INVALID')).toBe(true);
    }
  });
});

describe('repositories, familiar strings and helpers', () => {
  it.each(['', ':justtag', `@${SHA_F}`, `validname@invaliddigest:${F64}`, 'example.com/repo:tag', `example.com/${'a'.repeat(256)}`, 'aa/asdf$$^/aa', `a@${SHA_F}`])(
    'parseRepository rejects %j (TestWithNameFailure)',
    (input) => {
      expect(rejection(input, parseRepository)).toMatch(/^invalid repository ".*": \S/);
    },
  );

  it('explains a registry given where a repository is expected', () => {
    try {
      parseRepository('localhost:5000');
      expect.unreachable();
    } catch (err) {
      expect(isKilnError(err, 'REFERENCE_INVALID')).toBe(true);
      expect((err as Error).message).toBe('invalid repository "localhost:5000": a repository takes no tag ":5000"');
      expect(isKilnError(err) && err.hint).toContain('localhost:5000/NAME');
    }
  });

  it.each([
    ['alpine', 'alpine:latest'], ['docker.io/library/alpine:3.20', 'alpine:3.20'], ['index.docker.io/user/app:1', 'user/app:1'],
    ['docker.io/library/foo/bar:1', 'library/foo/bar:1'], ['localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    [`ghcr.io/o/r@${SHA_F}`, `ghcr.io/o/r@${SHA_F}`], [`a:t@${SHA_F}`, `a:t@${SHA_F}`],
  ])('familiarString(%s) = %s', (input, want) => {
    expect(familiarString(parseReference(input))).toBe(want);
  });

  it('sets, replaces and drops tags and digests (TestWithTag, TestWithDigest)', () => {
    const ref = parseReference('test.com:8000/foo');
    expect(formatReference(referenceWithTag(ref, 'TAG5'))).toBe('test.com:8000/foo:TAG5');
    const pinned = referenceWithDigest(referenceWithTag(ref, 'latest'), SHA_F);
    expect(formatReference(pinned)).toBe(`test.com:8000/foo:latest@${SHA_F}`);
    expect(formatReference(referenceWithoutTag(pinned))).toBe(`test.com:8000/foo@${SHA_F}`);
    expect(formatReference(referenceWithTag(referenceWithoutTag(pinned), 'TAG5'))).toBe(`test.com:8000/foo:TAG5@${SHA_F}`);
    // TestInvalidReferenceComponents
    expect(() => parseReference('-foo')).toThrow(/not valid/);
    expect(() => referenceWithTag(parseReference('busybox'), '-foo')).toThrow('invalid tag "-foo" for docker.io/library/busybox');
    expect(() => referenceWithDigest(parseReference('busybox'), 'foo')).toThrow('invalid digest for docker.io/library/busybox');
  });

  it('validates tags and repository paths on their own', () => {
    expect([isValidTag('v1.0'), isValidTag('_x'), isValidTag('.x'), isValidTag(''), isValidTag('a'.repeat(129))]).toEqual([true, true, false, false, false]);
    expect([isValidRepositoryPath('library/alpine'), isValidRepositoryPath('Library/alpine'), isValidRepositoryPath('a//b'), isValidRepositoryPath('a'.repeat(256))]).toEqual([true, false, false, false]);
  });

  it.each([
    ['localhost', true], ['localhost:5000', true], ['LOCALHOST:5000', true], ['127.0.0.1', true], ['127.0.0.1:5000', true],
    ['127.1.2.3:80', true], ['[::1]', true], ['[::1]:5000', true], ['[0:0:0:0:0:0:0:1]:5000', true], ['[::0:1]', true],
    ['docker.io', false], ['localhost.example.com', false], ['foo.localhost', false], ['127.0.0.1.nip.io', false],
    ['127.0.0.256', false], ['127.1', false], ['128.0.0.1', false], ['10.0.0.1:5000', false], ['[::2]', false], ['[::]', false],
    ['[fe80::1]:5000', false], ['::1', false], ['localhost:abc', false], ['', false],
  ])('isLoopbackRegistry(%j) = %s', (registry, want) => {
    expect(isLoopbackRegistry(registry)).toBe(want);
  });
});
