import { KilnError, type DistributionErrorCode, type KilnErrorCode } from '../errors.js';
import { readErrorText } from './body.js';
import type { HttpResponse } from './http.js';

/** One entry of a Distribution error body (distribution-spec § Error Codes). */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** `detail` of every error built from a registry response: the status drives retries and `--format json`. */
export interface RegistryErrorDetail {
  status: number;
  errors: RegistryErrorEntry[];
}

/** Names the registry and the object a failed request was about, for the error message. */
export interface RegistryErrorContext {
  registry: string;
  /** E.g. `manifest app:1`, `blob sha256:… of app`. */
  object: string;
  /** Code for a 404 whose body names none (HEAD responses have no body). */
  notFound?: KilnErrorCode;
}

const DISTRIBUTION_CODES: ReadonlySet<string> = new Set<DistributionErrorCode>([
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS', 'RANGE_INVALID',
]);

/** Parses `{"errors":[{code,message,detail}]}`; anything else yields no entries. */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return []; // Proxies and some registries answer with HTML or plain text; the caller reports the status instead.
  }
  if (typeof doc !== 'object' || doc === null || !('errors' in doc) || !Array.isArray(doc.errors)) return [];
  const entries: RegistryErrorEntry[] = [];
  for (const e of doc.errors as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const rec = e as Record<string, unknown>;
    const code = typeof rec.code === 'string' ? rec.code : 'UNKNOWN';
    const message = typeof rec.message === 'string' ? rec.message : '';
    entries.push(rec.detail === undefined ? { code, message } : { code, message, detail: rec.detail });
  }
  return entries;
}

function codeFor(status: number, entries: RegistryErrorEntry[], ctx: RegistryErrorContext): KilnErrorCode {
  const known = entries.find((e) => DISTRIBUTION_CODES.has(e.code));
  if (known) return known.code as DistributionErrorCode;
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return ctx.notFound ?? 'NOT_FOUND';
  if (status === 405) return 'UNSUPPORTED';
  if (status === 416) return 'RANGE_INVALID';
  if (status === 429) return 'TOOMANYREQUESTS';
  return 'REGISTRY';
}

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  // An HTML error page says nothing useful in one line; the status does.
  if (flat === '' || flat.startsWith('<')) return '';
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

function hintFor(code: KilnErrorCode, status: number): string | undefined {
  if (code === 'TOOMANYREQUESTS') return 'the registry is rate limiting requests; try again later or log in';
  if (code === 'NAME_UNKNOWN') return 'check the repository name';
  if (status === 405) return 'the registry does not allow this operation (deletes are often disabled)';
  return undefined;
}

/** The KilnError for a failed response whose body text is already read. */
export function errorFromBody(status: number, statusText: string, text: string, ctx: RegistryErrorContext): KilnError {
  const entries = parseErrorBody(text);
  const code = codeFor(status, entries, ctx);
  const what = entries.length > 0
    ? entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ')
    : [`HTTP ${status}${statusText ? ` ${statusText}` : ''}`, snippet(text)].filter((s) => s !== '').join(': ');
  const detail: RegistryErrorDetail = { status, errors: entries };
  return new KilnError(code, `registry ${ctx.registry} refused ${ctx.object}: ${what}`, { detail, hint: hintFor(code, status) });
}

/** The KilnError for a failed response, reading (a bounded part of) its body. */
export async function registryError(res: HttpResponse, ctx: RegistryErrorContext): Promise<KilnError> {
  const text = await readErrorText(res);
  return errorFromBody(res.status, res.statusText, text, ctx);
}

/** HTTP status of the registry response behind `err`, when it came from one. */
export function errorStatus(err: unknown): number | undefined {
  if (!(err instanceof KilnError)) return undefined;
  const detail = err.detail;
  if (typeof detail !== 'object' || detail === null || !('status' in detail)) return undefined;
  return typeof detail.status === 'number' ? detail.status : undefined;
}
