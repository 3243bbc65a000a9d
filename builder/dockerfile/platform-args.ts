/**
 * The build args a Dockerfile gets without `--build-arg`: BuildKit's automatic platform args
 * (frontend/dockerfile/dockerfile2llb/platform.go defaultArgs), the predefined proxy args, and the BUILDKIT_* args
 * that steer BuildKit itself.
 */
import { readFileSync } from 'node:fs';
import { machine } from 'node:os';
import type { Platform } from '../../oci/descriptor.js';
import { formatPlatform, hostPlatform as processPlatform, normalizePlatform } from '../../oci/platform.js';

export { formatPlatform };

/**
 * Predefined proxy args (Dockerfile reference § Predefined ARGs): usable with `--build-arg` without an ARG, given to
 * RUN as environment but kept out of the cache key and the image history unless the Dockerfile declares them.
 */
export const PROXY_ARGS: ReadonlySet<string> = new Set([
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
]);

/**
 * Build args BuildKit reads as its own settings (Dockerfile reference § BuildKit built-in build args, dockerui).
 * Kiln ignores what they configure; like any build arg, a Dockerfile that declares one with ARG still sees its value.
 */
export const BUILDKIT_ARGS: ReadonlySet<string> = new Set([
  'BUILDKIT_BUILD_NAME',
  'BUILDKIT_CACHE_MOUNT_NS',
  'BUILDKIT_CONTEXT_KEEP_GIT_DIR',
  'BUILDKIT_DOCKERFILE_CHECK',
  'BUILDKIT_INLINE_CACHE',
  'BUILDKIT_MULTI_PLATFORM',
  'BUILDKIT_SANDBOX_HOSTNAME',
  'BUILDKIT_SBOM_SCAN_CONTEXT',
  'BUILDKIT_SBOM_SCAN_STAGE',
  'BUILDKIT_SYNTAX',
]);

/** Options of platformArgs. */
export interface PlatformArgsOptions {
  /** The `--target` stage name; TARGETSTAGE is "default" without one. */
  targetStage?: string;
  /** The `--build-arg` values: BuildKit lets them override any of the automatic args. */
  buildArgs?: ReadonlyMap<string, string>;
}

/** The automatic global args (BUILDPLATFORM … TARGETSTAGE) for a build on `build` producing `target`. */
export function platformArgs(build: Platform, target: Platform, options: PlatformArgsOptions = {}): Map<string, string> {
  // BuildKit only ever sees normalised platforms (worker platforms and --platform both go through Normalize).
  const b = normalizePlatform(build);
  const t = normalizePlatform(target);
  const entries: Array<[string, string]> = [
    ['BUILDPLATFORM', joinPlatform(b, false)],
    ['BUILDOS', b.os],
    ['BUILDOSVERSION', b['os.version'] ?? ''],
    ['BUILDARCH', b.architecture],
    ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETPLATFORM', joinPlatform(t, true)],
    ['TARGETOS', t.os],
    ['TARGETOSVERSION', t['os.version'] ?? ''],
    ['TARGETARCH', t.architecture],
    ['TARGETVARIANT', t.variant ?? ''],
    ['TARGETSTAGE', options.targetStage || 'default'],
  ];
  return new Map(entries.map(([name, value]) => [name, options.buildArgs?.get(name) ?? value]));
}

/**
 * The proxy environment RUN gets from `--build-arg`s (BuildKit proxyEnvFromBuildArgs): names match case-insensitively,
 * the last in sorted order wins, and each value is set in both upper and lower case.
 */
export function proxyEnv(buildArgs: ReadonlyMap<string, string>): Map<string, string> {
  const values = new Map<string, string>();
  for (const name of [...buildArgs.keys()].sort()) {
    const lower = name.toLowerCase();
    if (PROXY_ARGS.has(lower)) values.set(lower, buildArgs.get(name) ?? '');
  }
  const env = new Map<string, string>();
  for (const lower of ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy']) {
    const value = values.get(lower);
    if (!value) continue;
    env.set(lower.toUpperCase(), value);
    env.set(lower, value);
  }
  return env;
}

let cachedHost: Platform | undefined;

/** The build platform as BuildKit's worker reports it: normalised, with the ARM variant read from the CPU on Linux. */
export function hostPlatform(): Platform {
  if (cachedHost) return { ...cachedHost };
  let platform = processPlatform();
  if (platform.os === 'linux' && platform.architecture === 'arm') {
    // containerd asks the kernel (/proc/cpuinfo, then uname) rather than the ISA the runtime was compiled for.
    const cpuinfo = readCpuinfo();
    const variant = cpuinfo === undefined ? undefined : armCpuVariant(cpuinfo, machine());
    if (variant !== undefined) platform = normalizePlatform({ ...platform, variant });
  }
  cachedHost = platform;
  return { ...platform };
}

/** ARM variant from /proc/cpuinfo text and the uname machine, by containerd's getCPUVariant rules ("unknown" if odd). */
export function armCpuVariant(cpuinfo: string, unameMachine: string): string | undefined {
  let raw = cpuinfoField(cpuinfo, 'cpu architecture');
  if (raw === undefined) {
    const arch = unameMachine.toLowerCase();
    if (arch === 'aarch64') raw = '8';
    else if (arch.startsWith('armv') && arch.length >= 5) raw = /^[3-8]$/.test(arch.charAt(4)) ? arch.charAt(4) : 'unknown';
    else return undefined;
  }
  // Raspberry Pi ARMv6 boards report architecture 7 (a kernel quirk); their model name gives them away.
  if (raw === '7' && cpuinfoField(cpuinfo, 'model name')?.toLowerCase().startsWith('armv6-compatible')) raw = '6';
  const lower = raw.toLowerCase();
  if (lower === '8' || lower === 'aarch64') return 'v8';
  if (['7', '7m', '?(12)', '?(13)', '?(14)', '?(15)', '?(16)', '?(17)'].includes(lower)) return 'v7';
  if (lower === '6' || lower === '6tej') return 'v6';
  if (['5', '5t', '5te', '5tej'].includes(lower)) return 'v5';
  if (lower === '4' || lower === '4t') return 'v4';
  if (lower === '3') return 'v3';
  return 'unknown';
}

/** /proc/cpuinfo, or undefined without procfs: containerd then gives up on the variant, and we keep Node's. */
function readCpuinfo(): string | undefined {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return undefined;
  }
}

/** First `key: value` line of /proc/cpuinfo whose key matches case-insensitively (the first core is enough). */
function cpuinfoField(cpuinfo: string, key: string): string | undefined {
  for (const line of cpuinfo.split('\n')) {
    const parts = line.split(':');
    if (parts.length > 1 && parts[0]?.trim().toLowerCase() === key) return parts[1]?.trim();
  }
  return undefined;
}

/** containerd's Format (os/arch/variant) or, with `all`, FormatAll (adds `(os.version+features)`, %-encoded). */
function joinPlatform(p: Platform, all: boolean): string {
  if (!p.os) return 'unknown';
  let os = p.os;
  if (all) {
    const version = encodeOsOption(p['os.version'] ?? '');
    const features = [...new Set(p['os.features'] ?? [])].filter((f) => f !== '').sort().map(encodeOsOption).join('+');
    if (version || features) os += `(${version}${features ? `+${features}` : ''})`;
  }
  return [os, p.architecture, p.variant ?? ''].filter((part) => part !== '').join('/');
}

function encodeOsOption(value: string): string {
  return value.replace(/[%+()/]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}
