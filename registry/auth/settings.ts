import { z } from 'zod';
import { KilnError } from '../../oci/errors.js';
import type { Action } from '../context.js';
import { isValidGlob } from './glob.js';

/** `auth.htpasswd` and `auth.token` (CNCF Distribution names), resolved. */
export interface AuthSettings {
  htpasswd: { realm: string; path: string };
  /** Bearer tokens from `GET /token`; undefined: clients authenticate with Basic on every request. */
  token: TokenSettings | undefined;
}

/** `auth.token`: Kiln is its own token server. */
export interface TokenSettings {
  /** `iss` of the tokens. */
  issuer: string;
  /** `aud` of the tokens and the `service` of the challenge. */
  service: string;
  /** Absolute token URL for the challenge; undefined: `<scheme>://<Host of the request>/token`. */
  realm: string | undefined;
  /** Token lifetime in seconds. */
  expirationSeconds: number;
}

/** One `access` rule: first rule that matches the repository and names the caller decides. */
export interface AccessRule {
  /** Repository glob: `*` is one path segment, `**` any number of them. */
  repository: string;
  /** User names; `*` is any authenticated user. */
  users: string[];
  /** Names of `groups` entries. */
  groups: string[];
  /** Actions granted to the users and groups named. */
  actions: Action[];
  /** Actions granted to every caller, signed in or not; undefined when the rule says nothing about anonymous callers. */
  anonymous: Action[] | undefined;
}

/** One `policies` rule: the first whose glob matches a repository applies to it. */
export interface PolicyRule {
  repository: string;
  /** Existing tags may not be moved or deleted (`sha256-…` referrer and signature tags excepted). */
  immutableTags: boolean;
  /** Most bytes one repository may hold (distinct blobs + manifests). */
  quotaBytes: number | undefined;
  /** The quota as written in the configuration, for messages. */
  quota: string | undefined;
}

/** `rateLimit`: one token bucket per client address and one per user. */
export interface RateLimitSettings {
  requestsPerSecond: number;
  burst: number;
}

/** Authentication, authorization, policies and rate limits of `kiln serve`. */
export interface SecurityConfig {
  /** Undefined: no `auth` section (allowed only on loopback, or with `--insecure-no-auth`). */
  auth: AuthSettings | undefined;
  access: AccessRule[];
  /** Group name → user names. */
  groups: Record<string, string[]>;
  policies: PolicyRule[];
  rateLimit: RateLimitSettings | undefined;
  /** `--insecure-no-auth`: serve a non-loopback address without authentication. */
  insecureNoAuth: boolean;
}

/** Config keys of this section that `REGISTRY_*` variables may set (dots become underscores). */
export const SECURITY_KEYS = [
  'auth.htpasswd.realm',
  'auth.htpasswd.path',
  'auth.token.realm',
  'auth.token.service',
  'auth.token.issuer',
  'auth.token.expiration',
  'access',
  'groups',
  'policies',
  'rateLimit.requestsPerSecond',
  'rateLimit.burst',
];

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i;
const NAME = /^[^\s:]+$/;

/** Bytes of `500MB` (decimal), `1GiB` (binary) or a plain number of bytes; undefined when malformed. */
export function parseSize(text: string | number): number | undefined {
  if (typeof text === 'number') return Number.isSafeInteger(text) && text >= 0 ? text : undefined;
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * (SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? NaN));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

function seconds(value: string): number {
  if (/^\d+$/.test(value)) return Number(value);
  const units: Record<string, number> = { h: 3600, m: 60, s: 1 };
  let total = 0;
  for (const m of value.matchAll(/(\d+)([hms])/g)) total += Number(m[1]) * (units[m[2] as string] ?? 0);
  return total;
}

const action = z.enum(['pull', 'push', 'delete']);
const glob = z.string().refine(isValidGlob, 'expected a repository glob such as team-a/** or library/* (lowercase name characters, / , * and **)');
const names = z.array(z.string().regex(NAME, 'names may not contain spaces or ":"'));
/** A number, also as text (environment variables are strings). */
const numeric = (schema: z.ZodNumber): z.ZodType<number> =>
  z.preprocess((v) => (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v), schema);
const positive = z.number({ error: 'expected a number' }).positive('must be greater than 0');

const accessRule = z
  .strictObject({ repository: glob, users: names.optional(), groups: names.optional(), actions: z.array(action).optional(), anonymous: z.array(action).optional() })
  .superRefine((rule, ctx) => {
    const named = rule.users !== undefined || rule.groups !== undefined;
    if (named && rule.actions === undefined) ctx.addIssue({ code: 'custom', path: ['actions'], message: 'required when users or groups are given (use [] to deny them)' });
    if (!named && rule.actions !== undefined) ctx.addIssue({ code: 'custom', path: ['actions'], message: 'grants nothing without users or groups' });
    if (!named && rule.anonymous === undefined) ctx.addIssue({ code: 'custom', message: 'names no users, groups or anonymous access, so it would never apply' });
  });

const policyRule = z
  .strictObject({
    repository: glob,
    immutableTags: z.boolean().optional(),
    quota: z.union([z.string(), z.number()]).refine((q) => (parseSize(q) ?? 0) > 0, 'expected a size such as 500MB, 1GiB or a number of bytes').optional(),
  })
  .refine((p) => p.immutableTags !== undefined || p.quota !== undefined, 'sets neither immutableTags nor quota');

const tokenExpiration = z.preprocess(
  (v) => (typeof v === 'string' && /^\d+$|^(?:\d+[hms])+$/.test(v) ? seconds(v) : v),
  z
    .number({ error: 'expected seconds or a duration such as 5m' })
    .int('expected whole seconds')
    .min(60, 'must be at least 60 s (clients assume tokens last that long)')
    .max(86_400, 'must be at most 24h'),
);

/** zod shape of the top-level keys `auth`, `access`, `groups`, `policies`, `rateLimit`. */
export const securityShape = {
  auth: z
    .object({
      htpasswd: z.object({ realm: z.string().min(1).optional(), path: z.string().min(1, 'must not be empty') }, {
        error: (issue) => (issue.input === undefined ? 'required: Kiln authenticates users against an htpasswd file (bcrypt, as htpasswd -B writes)' : 'expected a mapping {realm, path}'),
      }),
      token: z
        .object({
          issuer: z.string().min(1).optional(),
          service: z.string().min(1).optional(),
          realm: z.url({ protocol: /^https?$/, error: 'expected an absolute http(s) URL of the token endpoint, e.g. https://registry.example/token' }).optional(),
          expiration: tokenExpiration.optional(),
        })
        .optional(),
    })
    .optional(),
  access: z.array(accessRule).optional(),
  groups: z.record(z.string().regex(NAME, 'group names may not contain spaces or ":"'), names).optional(),
  policies: z.array(policyRule).optional(),
  rateLimit: z.object({ requestsPerSecond: numeric(positive), burst: numeric(positive.int('must be a whole number')).optional() }).optional(),
};

/** The parsed sections, as `securityShape` produces them. */
export type SecuritySections = { [K in keyof typeof securityShape]?: z.output<(typeof securityShape)[K]> };

/** Resolves the parsed sections (defaults applied); a mistake across sections is a USAGE error naming the key through `where`. */
export function toSecurityConfig(s: SecuritySections, insecureNoAuth: boolean, where: (key: string) => string = (k) => k): SecurityConfig {
  const fail = (key: string, message: string): KilnError => new KilnError('USAGE', `invalid configuration: ${where(key)}: ${message}`);
  const groups = s.groups ?? {};
  const access: AccessRule[] = (s.access ?? []).map((r, i) => {
    for (const g of r.groups ?? []) if (!Object.hasOwn(groups, g)) throw fail(`access[${i}].groups`, `group ${JSON.stringify(g)} is not defined under groups`);
    return { repository: r.repository, users: r.users ?? [], groups: r.groups ?? [], actions: r.actions ?? [], anonymous: r.anonymous };
  });
  if (s.auth === undefined && access.length > 0) throw fail('access', 'needs an auth section: without authentication every caller is anonymous');
  const token = s.auth?.token;
  return {
    auth: s.auth && {
      htpasswd: { realm: s.auth.htpasswd.realm ?? 'kiln', path: s.auth.htpasswd.path },
      token: token && { issuer: token.issuer ?? 'kiln', service: token.service ?? 'kiln', realm: token.realm, expirationSeconds: token.expiration ?? 300 },
    },
    access,
    groups,
    policies: (s.policies ?? []).map((p) => ({
      repository: p.repository,
      immutableTags: p.immutableTags ?? false,
      quotaBytes: p.quota === undefined ? undefined : parseSize(p.quota),
      quota: p.quota === undefined ? undefined : String(p.quota),
    })),
    rateLimit: s.rateLimit && { requestsPerSecond: s.rateLimit.requestsPerSecond, burst: s.rateLimit.burst ?? Math.max(1, Math.ceil(s.rateLimit.requestsPerSecond)) },
    insecureNoAuth,
  };
}
