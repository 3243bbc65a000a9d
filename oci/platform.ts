import { endianness } from 'node:os';
import type { Descriptor, Platform } from './descriptor.js';
import { KilnError } from './errors.js';
import type { ImageIndex } from './manifest.js';

/** `os` or `os(os.version)`, as containerd's platform specifiers allow. */
const OS_COMPONENT = /^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.-]+)\))?$/;
const COMPONENT = /^[A-Za-z0-9_.-]+$/;

/** Alternative architecture names (uname, Debian) → GOARCH, with the variant they imply (containerd normalizeArch). */
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  i386: { architecture: '386' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
};

/** Parses `os[(os.version)]/arch[/variant]` (docker's `--platform`), resolving arch aliases but keeping the variant as written. */
export function parsePlatform(specifier: string): Platform {
  const parts = specifier.trim().split('/');
  const [osPart = '', archPart = '', variantPart] = parts;
  const osMatch = OS_COMPONENT.exec(osPart);
  const bad = (why: string): KilnError =>
    new KilnError('VALIDATION', `invalid platform "${specifier}": ${why}`, { hint: 'expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8' });
  if (parts.length < 2 || parts.length > 3) throw bad('expected os/arch[/variant]');
  if (!osMatch?.[1]) throw bad(`"${osPart}" is not an operating system name`);
  if (!COMPONENT.test(archPart)) throw bad(`"${archPart}" is not an architecture name`);
  if (variantPart !== undefined && !COMPONENT.test(variantPart)) throw bad(`"${variantPart}" is not a variant name`);
  const lower = archPart.toLowerCase();
  const alias = ARCH_ALIASES[lower];
  const platform: Platform = { os: osMatch[1].toLowerCase(), architecture: alias?.architecture ?? lower };
  if (osMatch[2]) platform['os.version'] = osMatch[2];
  const variant = variantPart?.toLowerCase() ?? alias?.variant;
  if (variant) platform.variant = variant;
  return platform;
}

/** Formats a platform as `os[(os.version)]/arch[/variant]`, the inverse of parsePlatform. */
export function formatPlatform(platform: Platform): string {
  const osVersion = platform['os.version'] ? `(${platform['os.version']})` : '';
  return `${platform.os}${osVersion}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}`;
}

/** Canonical form as containerd's Normalize: x86_64 → amd64, aarch64 → arm64, arm defaults to v7, amd64/v1 and arm64/v8 implicit. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase() === 'macos' ? 'darwin' : platform.os.toLowerCase();
  const lower = platform.architecture.toLowerCase();
  const alias = ARCH_ALIASES[lower];
  const architecture = alias?.architecture ?? lower;
  let variant = alias?.variant ?? platform.variant?.toLowerCase() ?? '';
  if (architecture === 'amd64' && variant === 'v1') variant = '';
  if (architecture === 'arm64') {
    if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
    if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
  }
  if (architecture === 'arm') {
    if (variant === '' || variant === '7') variant = 'v7';
    if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
  }
  const out: Platform = { ...platform, os, architecture };
  if (variant) out.variant = variant;
  else delete out.variant;
  return out;
}

/** True when an image for `have` runs where `want` is asked: same os and arch, same or older variant (arm/v7 runs arm/v6). */
export function platformMatches(want: Platform, have: Platform): boolean {
  return platformRank(want, have) >= 0;
}

/** Node's process.platform / process.arch names that differ from GOOS / GOARCH. */
const NODE_OS: Partial<Record<NodeJS.Platform, string>> = { win32: 'windows', sunos: 'solaris' };
const NODE_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', mipsel: 'mipsle', mips64el: 'mips64le' };

/** The platform this process runs on, as GOOS/GOARCH names. */
export function hostPlatform(): Platform {
  const os = NODE_OS[process.platform] ?? process.platform;
  const node: string = process.arch;
  const architecture = node === 'ppc64' ? (endianness() === 'LE' ? 'ppc64le' : 'ppc64') : (NODE_ARCH[node] ?? node);
  const platform: Platform = { os, architecture };
  if (architecture === 'arm') {
    // Node is built for one ARM revision; it is the closest thing to the CPU's variant without reading /proc/cpuinfo.
    const variables: unknown = process.config.variables;
    const armVersion = typeof variables === 'object' && variables !== null ? (variables as Record<string, unknown>).arm_version : undefined;
    if ((typeof armVersion === 'string' || typeof armVersion === 'number') && /^\d+$/.test(String(armVersion))) {
      platform.variant = `v${armVersion}`;
    }
  }
  return normalizePlatform(platform);
}

/** Picks `index`'s manifest for `want` (best variant, then first listed), skipping attestations; PLATFORM_UNKNOWN otherwise. */
export function selectManifestForPlatform(index: ImageIndex, want: Platform): Descriptor {
  // image-index.md § manifests: "If multiple manifests match ... the first matching entry SHOULD be used".
  let best: { descriptor: Descriptor; rank: number } | undefined;
  for (const descriptor of index.manifests) {
    if (!isRunnable(descriptor.platform)) continue;
    const rank = platformRank(want, descriptor.platform);
    if (rank >= 0 && (best === undefined || rank < best.rank)) best = { descriptor, rank };
  }
  if (best) return best.descriptor;
  const available = [...new Set(index.manifests.flatMap((d) => (isRunnable(d.platform) ? [formatPlatform(d.platform)] : [])))];
  const listed = available.length > 0 ? `available: ${available.join(', ')}` : 'the index lists no platforms';
  throw new KilnError('PLATFORM_UNKNOWN', `no manifest for platform ${formatPlatform(want)} in the image index (${listed})`, {
    detail: { want: formatPlatform(want), available },
  });
}

/** BuildKit marks attestation manifests with the platform unknown/unknown so runtimes skip them. */
function isRunnable(platform: Platform | undefined): platform is Platform {
  return platform !== undefined && !(platform.os === 'unknown' && platform.architecture === 'unknown');
}

/** Position of `have` in `want`'s preference order (0 = exact), or -1 when it does not run there. */
function platformRank(want: Platform, have: Platform): number {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture || !osVersionMatches(w, h)) return -1;
  return compatibleVariants(w.architecture, w.variant ?? '').indexOf(h.variant ?? '');
}

/** Windows images must match the host build (major.minor.build); elsewhere os.version is informational. */
function osVersionMatches(want: Platform, have: Platform): boolean {
  const wanted = want['os.version'];
  if (!wanted) return true;
  const build = (v: string | undefined): string => (v ?? '').split('.').slice(0, 3).join('.');
  return build(have['os.version']) === build(wanted);
}

/** Normalised variants a CPU of `variant` runs, best first (containerd's platformVector, same architecture only). */
function compatibleVariants(architecture: string, variant: string): string[] {
  const version = /^v(\d+)(?:\.(\d+))?$/.exec(variant);
  const major = Number(version?.[1] ?? NaN);
  const minor = Number(version?.[2] ?? 0);
  if (architecture === 'amd64' && major > 1) {
    return [...descending(major, 2).map((n) => `v${n}`), ''];
  }
  if (architecture === 'arm' && major >= 5 && version?.[2] === undefined) {
    return descending(major, 5).map((n) => `v${n}`);
  }
  if (architecture === 'arm64' && (major === 8 || major === 9)) {
    const v8Minor = major === 9 ? Math.min(minor + 5, 9) : minor;
    const v9 = major === 9 ? [...descending(minor, 1).map((n) => `v9.${n}`), 'v9'] : [];
    return [...v9, ...descending(v8Minor, 1).map((n) => `v8.${n}`), ''];
  }
  return [variant];
}

function descending(from: number, to: number): number[] {
  const out: number[] = [];
  for (let n = from; n >= to; n--) out.push(n);
  return out;
}
