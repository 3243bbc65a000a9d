import { describe, expect, it } from 'vitest';
import { OutputTail } from '../../../builder/executor/output-tail.js';

describe('OutputTail', () => {
  it('keeps the last lines across arbitrary chunk boundaries, the unterminated one included', () => {
    const tail = new OutputTail(3);
    for (const piece of ['a\nb', '\r\nc\nd', 'e\n', 'f']) tail.push(Buffer.from(piece));
    expect(tail.result()).toEqual(['c', 'de', 'f']);
  });

  it('keeps a UTF-8 character split between chunks whole and cuts long lines', () => {
    const tail = new OutputTail(2, 5);
    const bytes = Buffer.from('é\n0123456789\n');
    tail.push(bytes.subarray(0, 1));
    tail.push(bytes.subarray(1));
    expect(tail.result()).toEqual(['é', '01234…']);
  });
});
