/** What a request does to a repository, which decides the token scope it needs. */
export type RepositoryAccess = 'pull' | 'push' | 'delete';

/**
 * The resource scope of a registry token request (distribution token-auth § scope):
 * `repository:NAME:pull`, `repository:NAME:pull,push`, or `repository:NAME:delete`.
 */
export function repositoryScope(repository: string, access: RepositoryAccess): string {
  const actions = access === 'push' ? 'pull,push' : access;
  return `repository:${repository}:${actions}`;
}

/** Scope of `GET /v2/_catalog`. */
export const CATALOG_SCOPE = 'registry:catalog:*';

interface ParsedScope {
  resource: string;
  actions: Set<string>;
}

// A scope is TYPE:NAME:ACTIONS; NAME may itself hold a ':' (registry:catalog:*, or a host:port in some servers).
function parseScope(scope: string): ParsedScope | undefined {
  const last = scope.lastIndexOf(':');
  if (last <= 0) return undefined;
  return { resource: scope.slice(0, last), actions: new Set(scope.slice(last + 1).split(',').filter((a) => a !== '')) };
}

/** True when a token granted for `have` also serves a request needing `need`. */
export function scopesCover(have: readonly string[], need: readonly string[]): boolean {
  const granted = have.map(parseScope).filter((s): s is ParsedScope => s !== undefined);
  return need.every((wanted) => {
    const w = parseScope(wanted);
    if (!w) return have.includes(wanted);
    return granted.some((g) => g.resource === w.resource && (g.actions.has('*') || [...w.actions].every((a) => g.actions.has(a))));
  });
}

/** Canonical cache key of a scope set: sorted, deduplicated. */
export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}
