import { describe, expect, it } from 'vitest';
import { parseLinkNext } from '../../../oci/client/tags.js';

const base = new URL('http://127.0.0.1:5000/v2/app/tags/list?n=2');

describe('parseLinkNext', () => {
  it('resolves a relative next link against the request URL', () => {
    expect(parseLinkNext('</v2/app/tags/list?last=b&n=2>; rel="next"', base)?.href).toBe('http://127.0.0.1:5000/v2/app/tags/list?last=b&n=2');
  });

  it('accepts a bare rel value and an absolute URL', () => {
    expect(parseLinkNext('<https://r.example/v2/_catalog?last=x&n=1>;rel=next', base)?.href).toBe('https://r.example/v2/_catalog?last=x&n=1');
  });

  it('picks next among several links and rel lists', () => {
    const header = '</v2/app/tags/list?n=2>; rel="first", </v2/app/tags/list?last=d&n=2>; title="a, b; c"; rel="prefetch next"';
    expect(parseLinkNext(header, base)?.search).toBe('?last=d&n=2');
  });

  it('returns undefined without a next link', () => {
    expect(parseLinkNext(null, base)).toBeUndefined();
    expect(parseLinkNext('', base)).toBeUndefined();
    expect(parseLinkNext('</v2/app/tags/list?n=2>; rel="prev"', base)).toBeUndefined();
  });
});
