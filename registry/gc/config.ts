import { z } from 'zod';
import { isValidGlob } from '../auth/glob.js';
import type { RetentionRule } from '../retention.js';

/** `gc` settings, resolved. */
export interface GcConfig {
  /** How often `kiln serve` collects garbage (ms); 0: never (run `kiln gc` instead). */
  intervalMs: number;
  /** Unreferenced blobs, links and manifests younger than this are kept (ms). */
  gracePeriodMs: number;
}

/** Defaults: no online collection; an hour of grace. */
export const DEFAULT_GC: GcConfig = { intervalMs: 0, gracePeriodMs: 3600_000 };

/** Config keys of `gc` and `retention` that `REGISTRY_*` variables may set (REGISTRY_GC_INTERVAL, REGISTRY_GC_GRACEPERIOD). */
export const GC_KEYS = ['gc.interval', 'gc.gracePeriod', 'retention'];

const UNITS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
const DURATION = /^(?:(?:\d+(?:ms|d|h|m|s))+|0)$/;

/** Milliseconds of a duration such as `1h`, `90m`, `1h30m`, `7d`, `500ms` or `0`; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return undefined;
  let total = 0;
  for (const m of trimmed.matchAll(/(\d+)(ms|d|h|m|s)/g)) total += Number(m[1]) * (UNITS[m[2] as string] ?? 0);
  return total;
}

const duration = z
  .string()
  .refine((d) => parseDuration(d) !== undefined, 'expected a duration such as 1h, 30m, 1h30m, 7d or 0')
  .transform((d) => parseDuration(d) ?? 0);
const glob = z.string().refine(isValidGlob, 'expected a repository glob such as ci/** or library/* (lowercase name characters, / , * and **)');
const count = z.union([z.number(), z.string().regex(/^\d+$/, 'expected a whole number').transform(Number)]).pipe(z.number().int('must be a whole number').min(0));

const retentionRule = z
  .strictObject({ repository: glob, keepLast: count.optional(), deleteUntaggedAfter: duration.optional() })
  .refine((r) => r.keepLast !== undefined || r.deleteUntaggedAfter !== undefined, 'sets neither keepLast nor deleteUntaggedAfter');

/** zod shape of the top-level keys `gc` and `retention`. */
export const gcShape = {
  gc: z.object({ interval: duration.optional(), gracePeriod: duration.optional() }).optional(),
  retention: z.array(retentionRule).optional(),
};

/** The parsed sections, as `gcShape` produces them. */
export type GcSections = { [K in keyof typeof gcShape]?: z.output<(typeof gcShape)[K]> };

/** Resolves `gc` and `retention` with their defaults. */
export function toGcConfig(s: GcSections): { gc: GcConfig; retention: RetentionRule[] } {
  return {
    gc: { intervalMs: s.gc?.interval ?? DEFAULT_GC.intervalMs, gracePeriodMs: s.gc?.gracePeriod ?? DEFAULT_GC.gracePeriodMs },
    retention: (s.retention ?? []).map((r) => ({ repository: r.repository, keepLast: r.keepLast, deleteUntaggedAfterMs: r.deleteUntaggedAfter })),
  };
}
