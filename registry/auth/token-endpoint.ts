import type { Request, Response } from 'express';
import { isKilnError } from '../../oci/errors.js';
import { isValidRepositoryPath } from '../../oci/reference.js';
import { RegistryError } from '../errors.js';
import type { AccessRules } from './access-rules.js';
import type { AuthFailure } from './access-control.js';
import { basicChallenge, clientAddress, presentedCredentials } from './credentials.js';
import type { HtpasswdFile } from './htpasswd.js';
import type { RateLimiter } from './rate-limit.js';
import { CATALOG, parseScopes, type RequestedScope, requestedActions, type TokenAccess, type TokenService } from './tokens.js';

/** What the token endpoint needs. */
export interface TokenEndpointOptions {
  tokens: TokenService;
  htpasswd: HtpasswdFile;
  /** Realm of the Basic challenge for bad credentials. */
  realm: string;
  rules: AccessRules;
  rateLimiter?: RateLimiter | undefined;
  onAuthFailure?: ((failure: AuthFailure) => void) | undefined;
}

/**
 * `GET /token?service=…&scope=…` (distribution token-auth § Requesting a Token): Basic credentials or
 * none (an anonymous token); the token's `access` claim holds, per requested repository, the actions
 * both asked for and permitted by the access rules — possibly none, which is not an error.
 */
export function tokenEndpoint(opts: TokenEndpointOptions): (req: Request, res: Response) => Promise<void> {
  const { tokens, htpasswd, rules } = opts;
  return async (req, res) => {
    if (req.method !== 'GET') throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on /token: use GET`, { headers: { Allow: 'GET' } });
    const address = clientAddress(req);
    opts.rateLimiter?.take(`address:${address}`, address);
    const url = new URL(req.originalUrl, 'http://registry.invalid');
    const presented = presentedCredentials(req);
    let user: string | undefined;
    if (presented.scheme !== 'none') {
      const ok = presented.scheme === 'basic' && (await htpasswd.verify(presented.user, presented.password));
      if (!ok || presented.scheme !== 'basic') {
        opts.onAuthFailure?.({ reason: 'credentials', user: presented.scheme === 'basic' ? presented.user : undefined, address, repository: undefined });
        throw new RegistryError('UNAUTHORIZED', presented.scheme === 'invalid' ? presented.why : 'invalid username or password', {
          headers: { 'WWW-Authenticate': basicChallenge(opts.realm) },
        });
      }
      user = presented.user;
      res.locals.user = user;
      opts.rateLimiter?.take(`user:${user}`, `user ${user}`);
    }
    const service = url.searchParams.get('service');
    if (service !== null && service !== tokens.settings.service) {
      throw new RegistryError('DENIED', `this token endpoint issues tokens for service ${JSON.stringify(tokens.settings.service)}, not ${JSON.stringify(service.slice(0, 100))}`);
    }
    let scopes: RequestedScope[];
    try {
      scopes = parseScopes(url.searchParams.getAll('scope'));
    } catch (err) {
      if (!isKilnError(err, 'UNSUPPORTED')) throw err;
      throw new RegistryError('UNSUPPORTED', err.message, { status: 400 });
    }
    const access = grants(scopes, user, rules);
    const body = await tokens.issue(user, access);
    res.status(200);
    // Tokens are credentials: no cache may keep them (RFC 6749 § 5.1).
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    res.json(body);
  };
}

/** The `access` claim: for each requested resource, the requested actions the rules permit (entries with none are left out). */
export function grants(scopes: readonly RequestedScope[], user: string | undefined, rules: AccessRules): TokenAccess[] {
  const access: TokenAccess[] = [];
  for (const scope of scopes) {
    if (scope.type === CATALOG.type && scope.name === CATALOG.name) {
      // Everyone may ask; the catalog lists only what the token's subject may pull.
      access.push({ type: CATALOG.type, name: CATALOG.name, actions: ['*'] });
      continue;
    }
    if (scope.type !== 'repository') continue;
    if (!isValidRepositoryPath(scope.name)) {
      throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(scope.name.slice(0, 100))} in scope`);
    }
    const permitted = rules.permitted(user, scope.name);
    const actions = requestedActions(scope.actions).filter((a) => permitted.has(a));
    const existing = access.find((a) => a.type === 'repository' && a.name === scope.name);
    if (existing) existing.actions = [...new Set([...existing.actions, ...actions])];
    else if (actions.length > 0) access.push({ type: 'repository', name: scope.name, actions });
  }
  return access;
}
