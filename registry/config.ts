import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { errorMessage, KilnError } from '../oci/errors.js';
import { SECURITY_KEYS, type SecurityConfig, securityShape, toSecurityConfig } from './auth/settings.js';
import { DEFAULT_GC, GC_KEYS, type GcConfig, gcShape, toGcConfig } from './gc/config.js';
import type { RetentionRule } from './retention.js';

/** Resolved settings of `kiln serve`. */
export interface RegistryConfig {
  /** `HOST:PORT` to listen on; port 0 picks a free one. */
  addr: string;
  /** Data directory: `metadata.sqlite`, `blobs/`, `uploads/`, `tmp/`. */
  data: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** Upload sessions idle longer than this are purged (ms). */
  uploadMaxAgeMs: number;
  /** How often the purge runs while serving (ms). */
  uploadPurgeIntervalMs: number;
  /** `auth`, `access`, `groups`, `policies`, `rateLimit` and `--insecure-no-auth` (registry/auth/settings.ts). */
  security: SecurityConfig;
  /** `gc.interval` (online collection; 0: off) and `gc.gracePeriod` (registry/gc/config.ts). */
  gc: GcConfig;
  /** `retention` rules, applied by every garbage collection. */
  retention: RetentionRule[];
  /** JSON access log lines on stdout; `log.accesslog.disabled: true` turns them off. */
  accessLog: boolean;
}

/** Where settings come from, weakest first: defaults, `--config` file, `REGISTRY_*` environment, flags. */
export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: { addr?: string | undefined; data?: string | undefined; insecureNoAuth?: boolean | undefined };
}

/** The loaded configuration and the keys it ignored. */
export interface LoadedConfig {
  config: RegistryConfig;
  /** Unknown keys (Distribution keys Kiln does not implement, typos): warned, not fatal, so Distribution files load. */
  warnings: string[];
}

/** Defaults of DESIGN.md § Defaults. */
export const DEFAULT_CONFIG: RegistryConfig = {
  addr: '127.0.0.1:5000',
  data: './kiln-data',
  logLevel: 'info',
  uploadMaxAgeMs: 24 * 3600_000,
  uploadPurgeIntervalMs: 3600_000,
  security: { auth: undefined, access: [], groups: {}, policies: [], rateLimit: undefined, insecureNoAuth: false },
  gc: DEFAULT_GC,
  retention: [],
  accessLog: true,
};

/** Keys Kiln reads, with CNCF Distribution's names (configuration.md); `version` is accepted and ignored. */
const KNOWN = ['version', 'log.level', 'http.addr', 'storage.filesystem.rootdirectory', 'storage.maintenance.uploadpurging.age', 'storage.maintenance.uploadpurging.interval', ...SECURITY_KEYS, 'log.accesslog.disabled', ...GC_KEYS];
/** Sections whose silent omission would weaken security: refused until Kiln implements them. */
const REFUSED = ['http.tls'];

const ADDR = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/;
/** Go duration subset Distribution uses for purging (`24h`, `30m`, `1h30m`). */
const DURATION = /^(?:\d+(?:h|m|s|ms))+$/;

const schema = z.object({
  version: z.union([z.string(), z.number()]).optional(),
  log: z
    .object({
      level: z.enum(['error', 'warn', 'info', 'debug']).optional(),
      // Environment variables are strings: REGISTRY_LOG_ACCESSLOG_DISABLED=true.
      accesslog: z.object({ disabled: z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]).optional() }).optional(),
    })
    .optional(),
  http: z
    .object({
      addr: z
        .string()
        .regex(ADDR, 'expected HOST:PORT, e.g. 127.0.0.1:5000 or [::1]:5000')
        .refine((a) => Number(ADDR.exec(a)?.[1]) <= 65535, 'port must be 0-65535')
        .optional(),
    })
    .optional(),
  storage: z
    .object({
      filesystem: z.object({ rootdirectory: z.string().min(1, 'must not be empty').optional() }).optional(),
      maintenance: z
        .object({
          uploadpurging: z
            .object({
              age: z.string().regex(DURATION, 'expected a duration such as 24h or 90m').optional(),
              interval: z.string().regex(DURATION, 'expected a duration such as 1h or 30m').optional(),
            })
            .optional(),
        })
        .optional(),
    })
    .optional(),
  ...securityShape,
  ...gcShape,
});

/**
 * Loads the configuration: YAML file, then `REGISTRY_<SECTION>_<KEY>` variables for the known keys
 * (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY, REGISTRY_LOG_LEVEL, …), then flags.
 * Invalid values are USAGE errors naming the key and where it came from.
 */
export async function loadConfig(sources: ConfigSources = {}): Promise<LoadedConfig> {
  const warnings: string[] = [];
  const tree: Record<string, unknown> = sources.file === undefined ? {} : await readConfigFile(sources.file);
  for (const path of leafPaths(tree)) {
    if (REFUSED.some((r) => path === r || path.startsWith(`${r}.`))) {
      throw new KilnError('USAGE', `${sources.file}: ${path}: not supported by this version of kiln serve`, {
        hint: 'remove the section and terminate TLS in a reverse proxy; TLS is not implemented yet, and ignoring it would expose the registry',
      });
    }
    if (!KNOWN.includes(path)) warnings.push(`${sources.file}: unknown key ${path} (ignored)`);
  }
  const origin = new Map<string, string>(leafPaths(tree).map((p) => [p, `${sources.file}: ${p}`]));
  for (const [name, value] of Object.entries(sources.env ?? {})) {
    if (!name.startsWith('REGISTRY_') || value === undefined) continue;
    const path = KNOWN.find((k) => `REGISTRY_${k.replace(/\./g, '_').toUpperCase()}` === name);
    // Other REGISTRY_* variables (REGISTRY_AUTH_FILE is a client's) are not ours to judge.
    if (path === undefined) continue;
    setPath(tree, path, value);
    origin.set(path, `environment variable ${name}`);
  }
  const flags = sources.flags ?? {};
  for (const [flag, path, value] of [['--addr', 'http.addr', flags.addr], ['--data', 'storage.filesystem.rootdirectory', flags.data]] as const) {
    if (value === undefined) continue;
    setPath(tree, path, value);
    origin.set(path, flag);
  }
  const parsed = schema.safeParse(tree);
  // A key inside a list or map (`access[0].actions`) is named after the file or variable its section came from.
  const where = (key: string): string => {
    const section = [...origin.keys()].find((k) => key === k || key.startsWith(`${k}.`) || key.startsWith(`${k}[`));
    if (section !== undefined) return `${origin.get(section)}${key.slice(section.length)}`;
    // A missing key (auth.htpasswd) is the file's omission.
    return sources.file === undefined ? key : `${sources.file}: ${key}`;
  };
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = (issue?.path ?? []).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new KilnError('USAGE', `invalid configuration: ${where(path)}: ${issue?.message ?? 'invalid value'}`);
  }
  const c = parsed.data;
  const purging = c.storage?.maintenance?.uploadpurging;
  return {
    config: {
      addr: c.http?.addr ?? DEFAULT_CONFIG.addr,
      data: c.storage?.filesystem?.rootdirectory ?? DEFAULT_CONFIG.data,
      logLevel: c.log?.level ?? DEFAULT_CONFIG.logLevel,
      uploadMaxAgeMs: purging?.age === undefined ? DEFAULT_CONFIG.uploadMaxAgeMs : durationMs(purging.age),
      uploadPurgeIntervalMs: purging?.interval === undefined ? DEFAULT_CONFIG.uploadPurgeIntervalMs : durationMs(purging.interval),
      security: toSecurityConfig(c, flags.insecureNoAuth ?? false, where),
      ...toGcConfig(c),
      accessLog: c.log?.accesslog?.disabled !== true,
    },
    warnings,
  };
}

/** Host and port of an `addr` (brackets of an IPv6 host removed; an empty host means all interfaces). */
export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(i + 1)) };
}

async function readConfigFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new KilnError('USAGE', `cannot read configuration file ${file}: ${errorMessage(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KilnError('USAGE', `${file} is not valid YAML: ${errorMessage(err)}`, { cause: err });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new KilnError('USAGE', `${file}: the top level must be a mapping of sections (http, storage, log)`);
  return doc as Record<string, unknown>;
}

function leafPaths(tree: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([key, value]) => {
    const path = `${prefix}${key}`;
    const isSection = typeof value === 'object' && value !== null && !Array.isArray(value) && !KNOWN.includes(path);
    return isSection ? leafPaths(value as Record<string, unknown>, `${path}.`) : [path];
  });
}

function setPath(tree: Record<string, unknown>, path: string, value: string): void {
  const keys = path.split('.');
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
}

function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000, ms: 1 };
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|h|m|s)/g)) total += Number(m[1]) * (units[m[2] as string] ?? 0);
  return total;
}
