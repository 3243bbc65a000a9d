import { describe, expect, it } from 'vitest';
import { parseFlags } from '../../../builder/dockerfile/flags.js';
import { parseAst } from '../../../builder/dockerfile/scanner.js';
import { thrown } from '../../support/errors.js';

const node = (line: string) => {
  const n = parseAst(`FROM x\n${line}`, { file: 'Dockerfile' }).nodes[1];
  if (n === undefined) throw new Error('no node');
  return n;
};
const spec = { str1: 'string', bool1: 'bool', many: 'strings' } as const;

describe('parseFlags', () => {
  it('leaves absent flags absent', () => {
    expect(parseFlags(node('COPY a b'), 'COPY', spec)).toEqual({});
    expect(parseFlags(node('COPY -- a b'), 'COPY', spec)).toEqual({});
  });

  it('reads strings, booleans and repeated flags', () => {
    expect(parseFlags(node('COPY --str1= a b'), 'COPY', spec)).toEqual({ str1: '' });
    expect(parseFlags(node('COPY --str1=BYE a b'), 'COPY', spec)).toEqual({ str1: 'BYE' });
    expect(parseFlags(node('COPY --bool1 a b'), 'COPY', spec)).toEqual({ bool1: true });
    expect(parseFlags(node('COPY --bool1=true a b'), 'COPY', spec)).toEqual({ bool1: true });
    expect(parseFlags(node('COPY --bool1=FALSE a b'), 'COPY', spec)).toEqual({ bool1: false });
    expect(parseFlags(node('COPY --many=a --many=b x y'), 'COPY', spec)).toEqual({ many: ['a', 'b'] });
  });

  it('refuses missing values, bad booleans, repeats and unknown flags, pointing at the flag', () => {
    expect(thrown(() => parseFlags(node('COPY --str1 a b'), 'COPY', spec)).message).toBe(
      'Dockerfile:2:6: missing a value on flag: --str1 (expected --str1=<value>)',
    );
    expect(thrown(() => parseFlags(node('COPY --bool1= a b'), 'COPY', spec)).message).toContain('missing a value on flag: --bool1');
    expect(thrown(() => parseFlags(node('COPY --bool1=maybe a b'), 'COPY', spec)).message).toContain(
      'expecting boolean value for flag --bool1, not: maybe',
    );
    expect(thrown(() => parseFlags(node('COPY --str1=a --str1=b x y'), 'COPY', spec)).message).toContain('duplicate flag specified: --str1');
    expect(thrown(() => parseFlags(node('COPY --many x y'), 'COPY', spec)).message).toContain('missing a value on flag: --many');
    const err = thrown(() => parseFlags(node('COPY --str2=x a b'), 'COPY', spec));
    expect(err.code).toBe('DOCKERFILE_INVALID');
    expect(err.message).toBe('Dockerfile:2:6: unknown flag --str2 for COPY: did you mean --str1? (expected --str1, --bool1, --many)');
    expect(thrown(() => parseFlags(node('MAINTAINER --boo joe@example.com'), 'MAINTAINER', {})).message).toBe(
      'Dockerfile:2:12: unknown flag --boo for MAINTAINER (MAINTAINER takes no flags)',
    );
  });
});
