import { KilnError } from '../oci/errors.js';
import type { PublicKey } from './keys.js';

// Key validity windows are Kiln's, not @sigstore/verify's (its trust material says every key is always valid):
// a signature counts only when its signed time (the payload's optional.timestamp, a tag state's `issued`) lies in
// the window of the key that made it. A window comes from the user (--key-valid-from/--key-valid-until, a policy's
// keyValidity) or from a key rotation, which ends the old key's window where the new key's begins.

/** When a key may have signed: from (inclusive) and until (exclusive); an open end is unbounded. */
export interface KeyValidity {
  from?: Date;
  until?: Date;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 date-time (`2026-01-31T00:00:00Z`, offsets allowed); USAGE naming `what` otherwise. */
export function parseRfc3339(text: string, what: string): Date {
  const time = RFC3339.test(text.trim()) ? Date.parse(text.trim()) : Number.NaN;
  if (Number.isNaN(time)) throw new KilnError('USAGE', `${what} "${text}" is not an RFC 3339 time: expected e.g. 2026-01-31T00:00:00Z`);
  return new Date(time);
}

/** `key` with `validity` narrowed into its window (the later start, the earlier end). */
export function withValidity(key: PublicKey, validity: KeyValidity | undefined): PublicKey {
  if (!validity || (validity.from === undefined && validity.until === undefined)) return key;
  const from = latest(key.validity?.from, validity.from);
  const until = earliest(key.validity?.until, validity.until);
  return { ...key, validity: { ...(from ? { from } : {}), ...(until ? { until } : {}) } };
}

/**
 * Whether `key` was valid at the signed time `at`, saying why; a key with a window needs a signed time. A time
 * known only to `precisionMs` (payload timestamps are whole seconds) counts if any instant it may stand for does:
 * a signature made by the new key in the second of a hand-over is not refused (the signer's clock decides anyway).
 */
export function validAt(key: PublicKey, at: Date | undefined, precisionMs = 0): { ok: boolean; detail: string } {
  const { from, until } = key.validity ?? {};
  if (from === undefined && until === undefined) return { ok: true, detail: `${key.name} has no validity window` };
  const window = `${from?.toISOString() ?? '-∞'} … ${until?.toISOString() ?? '∞'}`;
  if (!at) return { ok: false, detail: `${key.name} is valid ${window} only, and the signature has no signed time` };
  if (from !== undefined && at.getTime() + Math.max(precisionMs - 1, 0) < from.getTime()) return { ok: false, detail: `signed at ${at.toISOString()}, before ${key.name} became valid (${window})` };
  if (until !== undefined && at >= until) return { ok: false, detail: `signed at ${at.toISOString()}, after ${key.name} stopped being valid (${window})` };
  return { ok: true, detail: `signed at ${at.toISOString()}, within ${key.name}'s window ${window}` };
}

function latest(a: Date | undefined, b: Date | undefined): Date | undefined {
  return a === undefined ? b : b === undefined ? a : a > b ? a : b;
}

function earliest(a: Date | undefined, b: Date | undefined): Date | undefined {
  return a === undefined ? b : b === undefined ? a : a < b ? a : b;
}
