import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from '../../../oci/client/challenge.js';

describe('parseWwwAuthenticate', () => {
  it('reads a Bearer challenge with realm, service and scope', () => {
    const got = parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"');
    expect(got).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
  });

  it('keeps commas inside quoted strings (scope action lists)', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://r/token",scope="repository:a:pull,push",error="insufficient_scope"');
    expect(c?.params.scope).toBe('repository:a:pull,push');
    expect(c?.params.error).toBe('insufficient_scope');
  });

  it('reads Basic, case-insensitive schemes and keys, and spaces around "="', () => {
    expect(parseWwwAuthenticate('basic Realm = "Registry Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
  });

  it('splits several challenges in one header', () => {
    const got = parseWwwAuthenticate('Basic realm="a, b", Bearer realm="https://t/x", service=reg');
    expect(got.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(got[0]?.params.realm).toBe('a, b');
    expect(got[1]?.params).toEqual({ realm: 'https://t/x', service: 'reg' });
  });

  it('unescapes backslash escapes in quoted strings', () => {
    const [c] = parseWwwAuthenticate('Bearer realm="https://t/\\"x\\"\\\\y"');
    expect(c?.params.realm).toBe('https://t/"x"\\y');
  });

  it('returns nothing for an empty header and tolerates junk', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('Bearer ,,, realm="r" ;')).toEqual([{ scheme: 'bearer', params: { realm: 'r' } }]);
  });
});
