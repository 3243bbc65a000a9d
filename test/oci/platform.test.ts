import { describe, expect, it } from 'vitest';
import type { Descriptor, Platform } from '../../oci/descriptor.js';
import { digestOf } from '../../oci/digest.js';
import type { ImageIndex } from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifestForPlatform,
} from '../../oci/platform.js';
import { thrown } from '../support/errors.js';

describe('parsePlatform / formatPlatform', () => {
  it.each<[string, Platform]>([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm/v7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['Linux/X86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/i386', { os: 'linux', architecture: '386' }],
    ['windows(10.0.17763)/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }],
    [' linux/riscv64 ', { os: 'linux', architecture: 'riscv64' }],
  ])('parses %s', (spec, want) => {
    expect(parsePlatform(spec)).toEqual(want);
  });

  it.each(['', 'linux', 'linux/', '/amd64', 'linux/amd64/', 'linux/amd64/v8/x', 'linux/amd 64', 'linux()/amd64', 'li*nux/amd64'])(
    'rejects %j with VALIDATION naming the specifier',
    (spec) => {
      const err = thrown(() => parsePlatform(spec));
      expect(err.code).toBe('VALIDATION');
      expect(err.message).toContain(`invalid platform "${spec}"`);
    },
  );

  it.each(['linux/amd64', 'linux/arm64/v8', 'linux/arm/v6', 'windows(10.0.17763)/amd64'])('round-trips %s', (spec) => {
    expect(formatPlatform(parsePlatform(spec))).toBe(spec);
  });
});

describe('normalizePlatform', () => {
  it.each<[Platform, Platform]>([
    [{ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v1' }, { os: 'linux', architecture: 'amd64' }],
    [{ os: 'linux', architecture: 'amd64', variant: 'v3' }, { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }],
    [{ os: 'linux', architecture: 'arm64', variant: '9.0' }, { os: 'linux', architecture: 'arm64', variant: 'v9' }],
    [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v7' }],
    [{ os: 'linux', architecture: 'arm', variant: '6' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'linux', architecture: 'armel' }, { os: 'linux', architecture: 'arm', variant: 'v6' }],
    [{ os: 'MacOS', architecture: 'ARM64' }, { os: 'darwin', architecture: 'arm64' }],
  ])('normalises %j', (input, want) => {
    expect(normalizePlatform(input)).toEqual(want);
  });

  it('keeps os.version and does not mutate its argument', () => {
    const input: Platform = { os: 'windows', architecture: 'AMD64', 'os.version': '10.0.20348.1' };
    expect(normalizePlatform(input)).toEqual({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.1' });
    expect(input.architecture).toBe('AMD64');
  });
});

describe('platformMatches', () => {
  const p = (spec: string): Platform => parsePlatform(spec);
  it.each([
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/aarch64', 'linux/arm64', true],
    ['linux/arm', 'linux/arm/v7', true],
    ['linux/arm/v7', 'linux/arm/v6', true],
    ['linux/arm/v6', 'linux/arm/v7', false],
    ['linux/amd64', 'linux/amd64/v3', false],
    ['linux/amd64/v3', 'linux/amd64/v2', true],
    ['linux/amd64/v3', 'linux/amd64', true],
    ['linux/arm64/v8.2', 'linux/arm64/v8.1', true],
    ['linux/arm64', 'linux/arm64/v8.1', false],
    ['linux/amd64', 'linux/arm64', false],
    ['linux/amd64', 'windows/amd64', false],
    ['linux/arm64', 'linux/arm/v7', false],
    ['windows(10.0.17763)/amd64', 'windows(10.0.17763.1879)/amd64', true],
    ['windows(10.0.17763)/amd64', 'windows(10.0.20348.1)/amd64', false],
    ['windows/amd64', 'windows(10.0.20348.1)/amd64', true],
  ])('want %s, have %s → %s', (want, have, ok) => {
    expect(platformMatches(p(want), p(have))).toBe(ok);
  });
});

describe('hostPlatform', () => {
  it('names the host with GOOS/GOARCH values', () => {
    const host = hostPlatform();
    const os = process.platform === 'win32' ? 'windows' : process.platform;
    expect(host.os).toBe(os);
    const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    if (arch[process.arch]) expect(host.architecture).toBe(arch[process.arch]);
    expect(normalizePlatform(host)).toEqual(host);
  });
});

describe('selectManifestForPlatform', () => {
  const entry = (name: string, platform?: Platform): Descriptor => ({
    mediaType: MediaType.OciManifest,
    digest: digestOf(name),
    size: 100,
    ...(platform ? { platform } : {}),
  });
  const amd64 = entry('amd64', { os: 'linux', architecture: 'amd64' });
  const arm64 = entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const armv6 = entry('armv6', { os: 'linux', architecture: 'arm', variant: 'v6' });
  const armv7 = entry('armv7', { os: 'linux', architecture: 'arm', variant: 'v7' });
  const attestation = entry('attestation', { os: 'unknown', architecture: 'unknown' });
  const bare = entry('no-platform');
  const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [bare, amd64, armv6, armv7, arm64, attestation] };

  it('picks the matching entry, normalising the request', () => {
    expect(selectManifestForPlatform(index, parsePlatform('linux/amd64'))).toBe(amd64);
    expect(selectManifestForPlatform(index, parsePlatform('linux/aarch64'))).toBe(arm64);
    expect(selectManifestForPlatform(index, parsePlatform('linux/x86_64'))).toBe(amd64);
  });

  it('prefers the exact variant over an older compatible one listed first', () => {
    expect(selectManifestForPlatform(index, parsePlatform('linux/arm/v7'))).toBe(armv7);
    expect(selectManifestForPlatform(index, parsePlatform('linux/arm'))).toBe(armv7);
    expect(selectManifestForPlatform(index, parsePlatform('linux/arm/v8'))).toBe(armv7);
    expect(selectManifestForPlatform({ ...index, manifests: [amd64, armv6] }, parsePlatform('linux/arm/v7'))).toBe(armv6);
  });

  it('takes the first of equally good entries (image-index.md § manifests)', () => {
    const second = entry('amd64-again', { os: 'linux', architecture: 'amd64' });
    expect(selectManifestForPlatform({ schemaVersion: 2, manifests: [amd64, second] }, parsePlatform('linux/amd64'))).toBe(amd64);
  });

  it('never chooses unknown/unknown attestation manifests', () => {
    const err = thrown(() => selectManifestForPlatform(index, { os: 'unknown', architecture: 'unknown' }));
    expect(err.code).toBe('PLATFORM_UNKNOWN');
  });

  it('throws PLATFORM_UNKNOWN listing the available platforms', () => {
    const err = thrown(() => selectManifestForPlatform(index, parsePlatform('linux/s390x')));
    expect(err.code).toBe('PLATFORM_UNKNOWN');
    expect(err.message).toBe(
      'no manifest for platform linux/s390x in the image index (available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8)',
    );
    expect(err.detail).toEqual({ want: 'linux/s390x', available: ['linux/amd64', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm64/v8'] });
  });

  it('says so when the index lists no platforms', () => {
    const err = thrown(() => selectManifestForPlatform({ schemaVersion: 2, manifests: [bare, attestation] }, parsePlatform('linux/amd64')));
    expect(err.message).toContain('the index lists no platforms');
  });
});
