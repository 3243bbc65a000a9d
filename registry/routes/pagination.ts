import type { Page } from '../db/metadata-store.js';
import { RegistryError } from '../errors.js';

/** Largest page served; a bigger `n` gets this many entries and a `Link` to the rest (§ Listing Tags allows it). */
export const MAX_PAGE = 10_000;

/** A parsed `n`/`last` query (distribution-spec § Listing Tags). */
export interface PageRequest {
  /** Entries wanted; undefined means all. */
  n: number | undefined;
  last: string | undefined;
}

/** Reads `n` and `last`; a non-numeric or negative `n` is 400. */
export function pageRequest(params: URLSearchParams): PageRequest {
  const raw = params.get('n');
  const last = params.get('last') ?? undefined;
  if (raw === null || raw === '') return { n: undefined, last };
  if (!/^\d+$/.test(raw)) {
    throw new RegistryError('UNSUPPORTED', `invalid n ${JSON.stringify(raw.slice(0, 40))}: a non-negative integer is required`, { status: 400 });
  }
  return { n: Math.min(Number(raw), MAX_PAGE), last };
}

/**
 * Fetches one page with `list` (asked for one extra entry, to know whether more follow) and builds
 * the `Link: <path?n=..&last=..>; rel="next"` header (RFC 5988) when they do. `n=0` is an empty
 * list without Link (§ Listing Tags: MUST NOT include a Link header).
 */
export async function paginate<T>(
  request: PageRequest,
  path: string,
  list: (page: Page) => Promise<T[] | undefined>,
): Promise<{ items: T[]; link: string | undefined } | undefined> {
  const n = request.n;
  const items = await list({ n: n === undefined ? undefined : n + 1, last: request.last });
  if (items === undefined) return undefined;
  if (n === undefined || items.length <= n) return { items: n === 0 ? [] : items, link: undefined };
  const page = items.slice(0, n);
  const last = page[page.length - 1];
  if (n === 0 || last === undefined) return { items: [], link: undefined };
  return { items: page, link: `<${path}?n=${n}&last=${encodeURIComponent(String(last))}>; rel="next"` };
}
