import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../cli/progress.js';
import { formatError, isCI, outputSettings } from '../../cli/output.js';
import { digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';

function capture(columns = 100): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({ write(chunk, _e, cb) { out += chunk.toString(); cb(); } }) as unknown as NodeJS.WriteStream;
  Object.assign(w, { columns, isTTY: true });
  return { stream: w, text: () => out };
}

const digest = digestOf('layer');

describe('progress', () => {
  it('prints one plain line per blob and manifest when not live', () => {
    const { stream, text } = capture();
    const p = createProgress({ json: false, color: false, live: false, quiet: false }, stream);
    p.onEvent({ type: 'blob-start', digest, size: 2048, mediaType: 'x' });
    p.onEvent({ type: 'blob-progress', digest, size: 2048, bytes: 1024 });
    p.onEvent({ type: 'blob-done', digest, size: 2048, action: 'copied' });
    p.onEvent({ type: 'blob-done', digest, size: 10, action: 'skipped' });
    p.onEvent({ type: 'manifest', digest, mediaType: 'm', tag: 'v1' });
    p.finish();
    expect(text().split('\n').filter(Boolean)).toEqual([
      `copied  blob ${digest} (2.0 KiB)`,
      `exists  blob ${digest} (10 B)`,
      `wrote   manifest ${digest} as v1`,
    ]);
  });

  it('redraws a live per-blob display with a bar on a TTY', () => {
    const { stream, text } = capture();
    const p = createProgress({ json: false, color: false, live: true, quiet: false }, stream);
    p.onEvent({ type: 'blob-start', digest, size: 4096, mediaType: 'x' });
    p.onEvent({ type: 'blob-progress', digest, size: 4096, bytes: 2048 });
    p.finish();
    expect(text()).toContain('copying');
    expect(text()).toContain('[##########..........] 2.0 KiB/4.0 KiB');
    expect(text()).toContain('\x1b[2K');
  });

  it('is silent with quiet', () => {
    const { stream, text } = capture();
    const p = createProgress({ json: false, color: false, live: false, quiet: true }, stream);
    p.onEvent({ type: 'blob-done', digest, size: 1, action: 'copied' });
    p.finish();
    expect(text()).toBe('');
  });
});

describe('output conventions', () => {
  it('reads CI like CI systems set it', () => {
    expect(isCI({ CI: 'true' })).toBe(true);
    expect(isCI({ CI: '1' })).toBe(true);
    expect(isCI({ CI: 'false' })).toBe(false);
    expect(isCI({})).toBe(false);
  });

  it('never draws live progress under CI', () => {
    const saved = process.env.CI;
    process.env.CI = 'true';
    try {
      expect(outputSettings().live).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });

  it('formats an error as one line with its hint', () => {
    const err = new KilnError('UNAUTHORIZED', 'authentication required for h/r\nsecond line', { hint: 'run kiln login h' });
    expect(formatError(err)).toBe('kiln: error: authentication required for h/r (hint: run kiln login h)');
  });
});
