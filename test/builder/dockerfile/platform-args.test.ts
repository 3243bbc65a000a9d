import { describe, expect, it } from 'vitest';
import {
  armCpuVariant,
  BUILDKIT_ARGS,
  formatPlatform,
  hostPlatform,
  platformArgs,
  PROXY_ARGS,
  proxyEnv,
} from '../../../builder/dockerfile/platform-args.js';
import { formatPlatform as ociFormatPlatform, normalizePlatform } from '../../../oci/platform.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };

describe('platformArgs', () => {
  it('sets every automatic arg from the build and target platforms', () => {
    expect(Object.fromEntries(platformArgs(amd64, armv7))).toEqual({
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDOSVERSION: '',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETOSVERSION: '',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
      TARGETSTAGE: 'default',
    });
  });

  it('lists them in BuildKit order', () => {
    expect([...platformArgs(amd64, amd64).keys()]).toEqual([
      'BUILDPLATFORM',
      'BUILDOS',
      'BUILDOSVERSION',
      'BUILDARCH',
      'BUILDVARIANT',
      'TARGETPLATFORM',
      'TARGETOS',
      'TARGETOSVERSION',
      'TARGETARCH',
      'TARGETVARIANT',
      'TARGETSTAGE',
    ]);
  });

  it('normalises as BuildKit sees platforms: arm64/v8 has no variant, bare arm is v7, aliases resolve', () => {
    const args = platformArgs({ os: 'linux', architecture: 'aarch64', variant: 'v8' }, { os: 'linux', architecture: 'arm' });
    expect(args.get('BUILDPLATFORM')).toBe('linux/arm64');
    expect(args.get('BUILDARCH')).toBe('arm64');
    expect(args.get('BUILDVARIANT')).toBe('');
    expect(args.get('TARGETPLATFORM')).toBe('linux/arm/v7');
    expect(args.get('TARGETVARIANT')).toBe('v7');
    expect(platformArgs(amd64, { os: 'linux', architecture: 'x86_64', variant: 'v1' }).get('TARGETPLATFORM')).toBe('linux/amd64');
    expect(platformArgs(amd64, { os: 'linux', architecture: 'arm64', variant: 'v9.0' }).get('TARGETVARIANT')).toBe('v9');
  });

  it('puts os.version and os.features in TARGETPLATFORM only (Format vs FormatAll), %-encoding reserved characters', () => {
    const windows = { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2227' };
    const args = platformArgs(windows, { ...windows, 'os.features': ['win32k', 'a+b', 'win32k', ''] });
    expect(args.get('BUILDPLATFORM')).toBe('windows/amd64');
    expect(args.get('BUILDOSVERSION')).toBe('10.0.20348.2227');
    expect(args.get('TARGETPLATFORM')).toBe('windows(10.0.20348.2227+a%2Bb+win32k)/amd64');
    expect(args.get('TARGETOSVERSION')).toBe('10.0.20348.2227');
    expect(platformArgs(amd64, { ...amd64, 'os.version': 'a/b(c)%' }).get('TARGETPLATFORM')).toBe('linux(a%2Fb%28c%29%25)/amd64');
  });

  it('names the --target stage', () => {
    expect(platformArgs(amd64, amd64, { targetStage: 'release' }).get('TARGETSTAGE')).toBe('release');
    expect(platformArgs(amd64, amd64, { targetStage: '' }).get('TARGETSTAGE')).toBe('default');
  });

  it('lets --build-arg override an automatic arg', () => {
    const args = platformArgs(amd64, armv7, { buildArgs: new Map([['TARGETARCH', 'custom'], ['OTHER', 'x']]) });
    expect(args.get('TARGETARCH')).toBe('custom');
    expect(args.get('TARGETPLATFORM')).toBe('linux/arm/v7');
    expect(args.has('OTHER')).toBe(false);
  });
});

describe('formatPlatform', () => {
  it('is the oci/ one', () => {
    expect(formatPlatform).toBe(ociFormatPlatform);
    expect(formatPlatform(armv7)).toBe('linux/arm/v7');
    expect(formatPlatform(amd64)).toBe('linux/amd64');
  });
});

describe('hostPlatform', () => {
  it('is this process platform in GOOS/GOARCH terms, normalised', () => {
    const host = hostPlatform();
    const goArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386' };
    const expected = goArch[process.arch];
    if (expected) expect(host.architecture).toBe(expected);
    expect(host.os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
    expect(normalizePlatform(host)).toEqual(host);
    if (host.architecture === 'arm64' || host.architecture === 'amd64') expect(host.variant).toBeUndefined();
  });

  it('returns a copy each time', () => {
    const first = hostPlatform();
    first.os = 'mutated';
    expect(hostPlatform().os).not.toBe('mutated');
  });
});

describe('armCpuVariant (containerd getCPUVariant)', () => {
  const cpuinfo = (arch: string, model = 'ARMv7 Processor rev 3 (v7l)'): string =>
    `processor\t: 0\nmodel name\t: ${model}\nBogoMIPS\t: 108.00\nCPU architecture: ${arch}\nCPU variant\t: 0x0\n\nprocessor\t: 1\nCPU architecture: 5\n`;

  it('reads the first CPU architecture field, case-insensitively', () => {
    expect(armCpuVariant(cpuinfo('7'), 'armv7l')).toBe('v7');
    expect(armCpuVariant(cpuinfo('8'), 'armv8l')).toBe('v8');
    expect(armCpuVariant(cpuinfo('AArch64'), 'aarch64')).toBe('v8');
    expect(armCpuVariant(cpuinfo('6TEJ'), 'armv6l')).toBe('v6');
    expect(armCpuVariant(cpuinfo('5te'), 'armv5tel')).toBe('v5');
    expect(armCpuVariant(cpuinfo('4t'), '')).toBe('v4');
    expect(armCpuVariant(cpuinfo('3'), '')).toBe('v3');
    expect(armCpuVariant(cpuinfo('?(12)'), '')).toBe('v7');
    expect(armCpuVariant(cpuinfo('7M'), '')).toBe('v7');
    expect(armCpuVariant(cpuinfo('42'), '')).toBe('unknown');
  });

  it('treats a Raspberry Pi ARMv6 that reports 7 as v6', () => {
    expect(armCpuVariant(cpuinfo('7', 'ARMv6-compatible processor rev 7 (v6l)'), 'armv6l')).toBe('v6');
  });

  it('falls back to the uname machine when cpuinfo has no architecture', () => {
    expect(armCpuVariant('processor\t: 0\n', 'armv7l')).toBe('v7');
    expect(armCpuVariant('', 'armv6l')).toBe('v6');
    expect(armCpuVariant('', 'aarch64')).toBe('v8');
    expect(armCpuVariant('', 'armv9l')).toBe('unknown');
    expect(armCpuVariant('', 'x86_64')).toBeUndefined();
  });

  it('gives what BuildKit then normalises: arm/v8 stays, arm64/v8 loses the variant', () => {
    expect(normalizePlatform({ os: 'linux', architecture: 'arm', variant: armCpuVariant('', 'armv8l') ?? '' }).variant).toBe('v8');
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: armCpuVariant('', 'aarch64') ?? '' }).variant).toBeUndefined();
  });
});

describe('predefined args', () => {
  it('PROXY_ARGS are the ten documented names', () => {
    expect([...PROXY_ARGS].sort()).toEqual(
      ['ALL_PROXY', 'FTP_PROXY', 'HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY', 'all_proxy', 'ftp_proxy', 'http_proxy', 'https_proxy', 'no_proxy'].sort(),
    );
    expect(PROXY_ARGS.has('Http_Proxy')).toBe(false);
  });

  it('BUILDKIT_ARGS include the documented built-in args', () => {
    for (const name of ['BUILDKIT_SYNTAX', 'BUILDKIT_INLINE_CACHE', 'BUILDKIT_MULTI_PLATFORM', 'BUILDKIT_SANDBOX_HOSTNAME', 'BUILDKIT_CACHE_MOUNT_NS', 'BUILDKIT_CONTEXT_KEEP_GIT_DIR', 'BUILDKIT_BUILD_NAME']) {
      expect(BUILDKIT_ARGS.has(name)).toBe(true);
    }
    expect(BUILDKIT_ARGS.has('SOURCE_DATE_EPOCH')).toBe(false);
    expect([...BUILDKIT_ARGS].every((name) => name.startsWith('BUILDKIT_'))).toBe(true);
  });
});

describe('proxyEnv', () => {
  it('sets both spellings of each proxy given, in a fixed order', () => {
    const env = proxyEnv(new Map([['no_proxy', 'localhost'], ['HTTPS_PROXY', 'https://p:3128'], ['FOO', 'bar']]));
    expect([...env]).toEqual([
      ['HTTPS_PROXY', 'https://p:3128'],
      ['https_proxy', 'https://p:3128'],
      ['NO_PROXY', 'localhost'],
      ['no_proxy', 'localhost'],
    ]);
  });

  it('matches names case-insensitively; the last in sorted order wins', () => {
    expect(proxyEnv(new Map([['http_proxy', 'lower'], ['HTTP_PROXY', 'upper']])).get('HTTP_PROXY')).toBe('lower');
    expect(proxyEnv(new Map([['Http_Proxy', 'mixed']])).get('http_proxy')).toBe('mixed');
    expect(proxyEnv(new Map([['all_proxy', 'socks5://s'], ['ALL_PROXY', 'x']])).get('ALL_PROXY')).toBe('socks5://s');
  });

  it('sets nothing for empty values or no proxy args', () => {
    expect(proxyEnv(new Map([['HTTP_PROXY', 'x'], ['http_proxy', '']])).size).toBe(0);
    expect(proxyEnv(new Map([['FTP_PROXY', '']])).size).toBe(0);
    expect(proxyEnv(new Map()).size).toBe(0);
  });
});
