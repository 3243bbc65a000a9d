import { KilnError } from '../errors.js';
import { readJson } from './body.js';
import { registryError } from './errors.js';
import { CATALOG_SCOPE, repositoryScope } from './scope.js';
import type { Transport } from './transport.js';

/** Options of a paginated listing. */
export interface ListOptions {
  /** Page size (`n`); the registry's default when absent. */
  pageSize?: number;
  /** Start after this entry (`last`). */
  last?: string;
}

const PAGE_LIMIT = 16 * 1024 * 1024;
// A registry that keeps sending the same next link would loop forever; real listings end long before this.
const MAX_PAGES = 100_000;

/** Splits on `sep` outside quoted strings and `<…>` targets. */
function splitTopLevel(text: string, sep: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let angled = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charAt(i);
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '<') angled = true;
    else if (ch === '>') angled = false;
    else if (ch === sep && !angled) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/**
 * The `rel="next"` target of a Link header (RFC 8288), resolved against `base`; undefined when there
 * is none. Handles several links in one header, quoted or bare rel values, and rel lists.
 */
export function parseLinkNext(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const value of splitTopLevel(header, ',')) {
    const target = /^\s*<([^>]*)>/.exec(value);
    if (!target) continue;
    const params = splitTopLevel(value.slice(target[0].length), ';').slice(1);
    const rel = params
      .map((p) => /^\s*rel\s*=\s*(?:"([^"]*)"|(\S+))\s*$/i.exec(p))
      .find((m) => m !== null);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (!rels.includes('next')) continue;
    try {
      return new URL(target[1] ?? '', base);
    } catch {
      return undefined; // An unusable link ends the listing like a missing one.
    }
  }
  return undefined;
}

/** Collects `field` across pages, following Link rel="next" (distribution-spec § Listing Tags). */
async function listPaged(t: Transport, first: URL, field: 'tags' | 'repositories', scopes: string[], object: string, repository?: string): Promise<string[]> {
  const items: string[] = [];
  const seen = new Set<string>();
  let url: URL | undefined = first;
  for (let page = 0; url && page < MAX_PAGES; page++) {
    if (seen.has(url.href)) throw new KilnError('REGISTRY', `registry ${t.registry} sent a pagination loop while listing ${object}`);
    seen.add(url.href);
    const res = await t.request({ method: 'GET', url, scopes, repository, headers: { accept: 'application/json' } });
    if (res.status !== 200) throw await registryError(res, { registry: t.registry, object: `listing of ${object}` });
    const next = parseLinkNext(res.headers.get('link'), url);
    const doc = await readJson(res, PAGE_LIMIT, `${object} from ${t.registry}`);
    const values = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)[field] : undefined;
    // Distribution answers `"tags": null` for a repository whose tags were all deleted.
    if (values !== null && values !== undefined) {
      if (!Array.isArray(values) || !values.every((v): v is string => typeof v === 'string')) {
        throw new KilnError('REGISTRY', `registry ${t.registry} sent a malformed ${field} list for ${object}`);
      }
      items.push(...values);
    }
    url = next;
  }
  return items;
}

function withPaging(url: URL, options: ListOptions): URL {
  if (options.pageSize !== undefined) url.searchParams.set('n', String(options.pageSize));
  if (options.last !== undefined) url.searchParams.set('last', options.last);
  return url;
}

/** All tags of a repository, following pagination. */
export async function listTags(t: Transport, repository: string, options: ListOptions = {}): Promise<string[]> {
  const url = withPaging(t.url(`/v2/${repository}/tags/list`), options);
  return listPaged(t, url, 'tags', [repositoryScope(repository, 'pull')], `tags of ${repository}`, repository);
}

/** All repositories of the registry (`/v2/_catalog`), following pagination; many registries refuse it. */
export async function listCatalog(t: Transport, options: ListOptions = {}): Promise<string[]> {
  const url = withPaging(t.url('/v2/_catalog'), options);
  return listPaged(t, url, 'repositories', [CATALOG_SCOPE], 'repositories');
}
