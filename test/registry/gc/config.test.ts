import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig } from '../../../registry/config.js';
import { parseDuration } from '../../../registry/gc/config.js';
import { isReferrerTag, matchesRepository, retentionRuleFor, tagsBeyondKeepLast } from '../../../registry/retention.js';
import type { Digest } from '../../../oci/digest.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-gc-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('gc, retention and access log configuration', () => {
  it('defaults: no online collection, an hour of grace, no retention, access log on', async () => {
    const { config } = await loadConfig();
    expect(config.gc).toEqual({ intervalMs: 0, gracePeriodMs: 3600_000 });
    expect(config.retention).toEqual([]);
    expect(config.accessLog).toBe(true);
    expect(DEFAULT_CONFIG.gc).toEqual(config.gc);
  });

  it('reads the issue example, with environment overrides', async () => {
    const path = await file(
      'ops.yml',
      'gc: { interval: 1h, gracePeriod: 30m }\nretention:\n  - repository: "ci/**"\n    keepLast: 10\n    deleteUntaggedAfter: 24h\n  - repository: "tmp/*"\n    deleteUntaggedAfter: 7d\nlog:\n  accesslog:\n    disabled: true\n',
    );
    const { config, warnings } = await loadConfig({ file: path });
    expect(warnings).toEqual([]);
    expect(config.gc).toEqual({ intervalMs: 3600_000, gracePeriodMs: 1800_000 });
    expect(config.retention).toEqual([
      { repository: 'ci/**', keepLast: 10, deleteUntaggedAfterMs: 86_400_000 },
      { repository: 'tmp/*', keepLast: undefined, deleteUntaggedAfterMs: 7 * 86_400_000 },
    ]);
    expect(config.accessLog).toBe(false);
    const env = { REGISTRY_GC_GRACEPERIOD: '0', REGISTRY_GC_INTERVAL: '15m', REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' };
    const { config: overridden } = await loadConfig({ file: path, env });
    expect(overridden.gc).toEqual({ intervalMs: 900_000, gracePeriodMs: 0 });
    expect(overridden.accessLog).toBe(true);
  });

  it('names the key of a bad value', async () => {
    const bad = async (text: string) => loadConfig({ file: await file('bad.yml', text) });
    await expect(bad('gc:\n  interval: soon\n')).rejects.toThrow(/gc\.interval: expected a duration/);
    await expect(bad('retention:\n  - repository: "ci/**"\n    keepLast: -1\n')).rejects.toThrow(/retention\[0\]\.keepLast/);
    await expect(bad('retention:\n  - repository: "ci/**"\n')).rejects.toThrow(/retention\[0\]: sets neither keepLast nor deleteUntaggedAfter/);
    await expect(bad('retention:\n  - repository: "CI/**"\n    keepLast: 1\n')).rejects.toThrow(/retention\[0\]\.repository: expected a repository glob/);
    await expect(bad('retention:\n  - repository: "ci/**"\n    keepLast: 1\n    keepFirst: 2\n')).rejects.toThrow(/retention\[0\]/);
    await expect(loadConfig({ env: { REGISTRY_LOG_ACCESSLOG_DISABLED: 'maybe' } })).rejects.toThrow(/REGISTRY_LOG_ACCESSLOG_DISABLED/);
  });

  it('parses durations and matches retention rules', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('1.5h')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
    const rules = [{ repository: 'ci/**', keepLast: 1 }, { repository: '**', keepLast: 100 }];
    expect(retentionRuleFor(rules, 'ci/app/x')?.keepLast).toBe(1);
    expect(retentionRuleFor(rules, 'prod/app')?.keepLast).toBe(100);
    expect(matchesRepository('ci/**', 'ci')).toBe(false);
    expect(matchesRepository('team/*', 'team/a/b')).toBe(false);
    expect(isReferrerTag(`sha256-${'a'.repeat(64)}.sig`)).toBe(true);
    expect(isReferrerTag(`sha256-${'a'.repeat(64)}`)).toBe(true);
    expect(isReferrerTag('sha256-latest')).toBe(false);
    const tag = (name: string, updatedAt: number) => ({ tag: name, digest: 'sha256:x' as Digest, updatedAt });
    const beyond = tagsBeyondKeepLast([tag('a', 1), tag('b', 3), tag('c', 2), tag(`sha256-${'b'.repeat(64)}.att`, 0), tag('d', 3)], 2);
    expect(beyond.map((t) => t.tag)).toEqual(['c', 'a']);
  });
});
