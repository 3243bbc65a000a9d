import { digestOf, parseDigest, type Digest } from './digest.js';
import { isJsonObject, showValue, validateAnnotations, validateStringArray } from './descriptor.js';
import { KilnError } from './errors.js';

/** Largest image config Kiln reads into memory (real ones are a few KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Healthcheck of a container config (Docker's HealthConfig; durations in nanoseconds). */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** Execution defaults of an image (config.md § Properties: config). */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  Shell?: string[];
  OnBuild?: string[];
  Memory?: number;
  MemorySwap?: number;
  CpuShares?: number;
}

/** One entry of an image's history (config.md § Properties: history). */
export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** The layers' uncompressed digests, base first (config.md § Properties: rootfs). */
export interface RootFs {
  type: 'layers';
  diff_ids: Digest[];
}

/**
 * An image configuration (OCI config.md, or Docker's container.image.v1 which it extends).
 * Fields the type does not name (e.g. Docker's `container_config`) are kept as received.
 */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: RootFs;
  history?: HistoryEntry[];
}

/** A field check: validates `value` at `path` and returns the value to keep. */
type Check = (value: unknown, path: string) => unknown;

/** RFC 3339 § 5.6 date-time, the format config.md requires for `created`. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

const fail = (path: string, why: string, cause?: unknown): KilnError =>
  new KilnError('VALIDATION', `${path}: ${why}`, cause === undefined ? {} : { cause });

/** Joins a field onto a path: `config sha256:…:` + `Env` → `config sha256:…: Env`; `…: config` + `Env` → `…: config.Env`. */
const at = (path: string, key: string): string => (path.endsWith(':') ? `${path} ${key}` : `${path}.${key}`);

const string: Check = (v, path) => {
  if (typeof v !== 'string') throw fail(path, `must be a string, got ${showValue(v)}`);
  return v;
};
const nonEmptyString: Check = (v, path) => {
  if (typeof v !== 'string' || v === '') throw fail(path, `required non-empty string, got ${showValue(v)}`);
  return v;
};
const boolean: Check = (v, path) => {
  if (typeof v !== 'boolean') throw fail(path, `must be true or false, got ${showValue(v)}`);
  return v;
};
const integer: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw fail(path, `must be an integer, got ${showValue(v)}`);
  return v;
};
const strings: Check = (v, path) => validateStringArray(v, path, 'VALIDATION');
const labels: Check = (v, path) => validateAnnotations(v, path, 'VALIDATION');
const timestamp: Check = (v, path) => {
  const m = RFC3339.exec(string(v, path) as string);
  const [month, day, hour, minute, second] = (m ?? []).slice(2).map(Number);
  if (!m || !inRange(month, 1, 12) || !inRange(day, 1, 31) || !inRange(hour, 0, 23) || !inRange(minute, 0, 59) || !inRange(second, 0, 60)) {
    throw fail(path, `must be an RFC 3339 date-time such as 2024-01-31T12:00:00Z, got ${showValue(v)}`);
  }
  return v;
};
/** ExposedPorts and Volumes serialise Go's map[string]struct{}: keys matter, values are `{}` (or null, as Go reads it). */
const set: Check = (v, path) => {
  if (!isJsonObject(v)) throw fail(path, `must be an object, got ${showValue(v)}`);
  const out: Record<string, object> = {};
  for (const [key, entry] of Object.entries(v)) {
    if (entry !== null && !isJsonObject(entry)) throw fail(`${path}[${JSON.stringify(key)}]`, `must be an object, got ${showValue(entry)}`);
    out[key] = entry ?? {};
  }
  return out;
};
const digest: Check = (v, path) => {
  const text = string(v, path) as string;
  try {
    return parseDigest(text);
  } catch (err) {
    throw fail(path, `invalid digest ${showValue(v)}`, err);
  }
};

/** Checks an object's known fields, keeping unknown ones; null means absent (config.md § Properties). */
function object(spec: Record<string, Check>, required: readonly string[] = []): Check {
  return (v, path) => {
    if (!isJsonObject(v)) throw fail(path, `must be an object, got ${showValue(v)}`);
    const out: Record<string, unknown> = { ...v };
    for (const [key, check] of Object.entries(spec)) {
      const value = v[key];
      if (value === undefined || value === null) {
        if (required.includes(key)) throw fail(at(path, key), 'required');
        delete out[key];
      } else {
        out[key] = check(value, at(path, key));
      }
    }
    return out;
  };
}

function array(item: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) throw fail(path, `must be an array, got ${showValue(v)}`);
    return v.map((entry: unknown, i) => item(entry, `${path}[${i}]`));
  };
}

const healthcheck = object({
  Test: strings,
  Interval: integer,
  Timeout: integer,
  StartPeriod: integer,
  StartInterval: integer,
  Retries: integer,
});

const containerConfig = object({
  User: string,
  ExposedPorts: set,
  Env: strings,
  Entrypoint: strings,
  Cmd: strings,
  Volumes: set,
  WorkingDir: string,
  Labels: labels,
  StopSignal: string,
  ArgsEscaped: boolean,
  Healthcheck: healthcheck,
  Shell: strings,
  OnBuild: strings,
  Memory: integer,
  MemorySwap: integer,
  CpuShares: integer,
});

/** config.md § rootfs: type MUST be "layers"; implementations MUST error on any other value. */
const rootfs = object(
  {
    type: (v, path) => {
      if (v !== 'layers') throw fail(path, `must be "layers", got ${showValue(v)}`);
      return v;
    },
    diff_ids: array(digest),
  },
  ['type', 'diff_ids'],
);

const history = object({ created: timestamp, created_by: string, author: string, comment: string, empty_layer: boolean });

const imageConfig = object(
  {
    created: timestamp,
    author: string,
    architecture: nonEmptyString,
    os: nonEmptyString,
    'os.version': string,
    'os.features': strings,
    variant: string,
    config: containerConfig,
    rootfs,
    history: array(history),
  },
  ['architecture', 'os', 'rootfs'],
);

/**
 * Parses and validates an image config blob; errors are VALIDATION and name the field under
 * `subject` (default `config <digest>`), e.g. `config sha256:…: rootfs.diff_ids[1]: invalid digest "x"`.
 */
export function parseImageConfig(bytes: Uint8Array, subject?: string): ImageConfig {
  const name = subject ?? `config ${digestOf(bytes)}`;
  let doc: unknown;
  try {
    // ignoreBOM keeps a byte-order mark in the text so JSON.parse rejects it, as Go's decoder does.
    doc = JSON.parse(new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes));
  } catch (err) {
    throw new KilnError('VALIDATION', `${name} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (!isJsonObject(doc)) throw fail(name, `must be a JSON object, got ${showValue(doc)}`);
  return imageConfig(doc, `${name}:`) as ImageConfig;
}

function inRange(n: number | undefined, min: number, max: number): boolean {
  return n !== undefined && n >= min && n <= max;
}
