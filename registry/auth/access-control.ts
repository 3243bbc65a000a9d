import type { Request } from 'express';
import type { Access, Action } from '../context.js';
import { RegistryError } from '../errors.js';
import type { AccessRules } from './access-rules.js';
import { basicChallenge, bearerChallenge, clientAddress, presentedCredentials, scopeOf, tokenRealmOf } from './credentials.js';
import type { HtpasswdFile } from './htpasswd.js';
import type { RateLimiter } from './rate-limit.js';
import { CATALOG, InvalidTokenError, type TokenService, tokenCovers, type VerifiedToken } from './tokens.js';

/** Who made a request, established once per request. */
export interface Caller {
  /** Undefined: anonymous. */
  user: string | undefined;
  scheme: 'none' | 'basic' | 'bearer';
  /** The verified token (scheme `bearer`). */
  token?: VerifiedToken;
}

/** A refused authentication or authorization, for metrics and audit logs; never carries a password or token. */
export interface AuthFailure {
  /** `credentials`: unknown user or wrong password; `token`: invalid token; `denied`: signed in, not permitted. */
  reason: 'credentials' | 'token' | 'denied';
  user: string | undefined;
  address: string;
  repository: string | undefined;
}

/** What AccessControl is built from; without `htpasswd` only rate limits apply. */
export interface AccessControlOptions {
  htpasswd?: HtpasswdFile | undefined;
  /** Realm of the Basic challenge (`auth.htpasswd.realm`). */
  realm?: string;
  /** Bearer tokens (`auth.token`); without it clients send Basic credentials on every request. */
  tokens?: TokenService | undefined;
  rules: AccessRules;
  rateLimiter?: RateLimiter | undefined;
  onAuthFailure?: ((failure: AuthFailure) => void) | undefined;
}

/**
 * The registry's authorizer: authenticates each request once (Basic against htpasswd, or a Bearer
 * token), applies the rate limits, then checks the access rules — or, for a Bearer request, that the
 * token grants the access. Refusals are 401 UNAUTHORIZED with a challenge, or 403 DENIED.
 */
export class AccessControl {
  private readonly opts: AccessControlOptions;
  private readonly callers = new WeakMap<Request, Caller>();

  constructor(opts: AccessControlOptions) {
    this.opts = opts;
  }

  /** The `authorize` hook of createApp. */
  readonly authorize = async (req: Request, access: Access): Promise<void> => {
    let caller = this.callers.get(req);
    // Only the first call of a request authenticates and counts; later ones (a mount's `from`) are probes.
    const primary = caller === undefined;
    if (caller === undefined) {
      const address = clientAddress(req);
      this.opts.rateLimiter?.take(`address:${address}`, address);
      caller = await this.authenticate(req, access);
      this.callers.set(req, caller);
      if (caller.user !== undefined) {
        // For access logs (the observability middleware reads it); never the credentials.
        if (req.res) req.res.locals.user = caller.user;
        this.opts.rateLimiter?.take(`user:${caller.user}`, `user ${caller.user}`);
      }
    }
    if (this.opts.htpasswd !== undefined) this.check(req, caller, access, primary);
  };

  /** The `catalogFilter` hook: true when the caller of `req` may pull `repository`. */
  readonly catalogFilter = async (req: Request, repository: string): Promise<boolean> => {
    if (this.opts.htpasswd === undefined) return true;
    return this.opts.rules.allows(this.callers.get(req)?.user, repository, ['pull']);
  };

  private async authenticate(req: Request, access: Access): Promise<Caller> {
    const presented = presentedCredentials(req);
    const htpasswd = this.opts.htpasswd;
    if (htpasswd === undefined || presented.scheme === 'none') return { user: undefined, scheme: 'none' };
    const repository = access.repository;
    if (presented.scheme === 'basic') {
      if (await htpasswd.verify(presented.user, presented.password)) return { user: presented.user, scheme: 'basic' };
      this.failed(req, 'credentials', presented.user, repository);
      throw this.unauthorized(req, access, 'invalid username or password');
    }
    if (presented.scheme === 'invalid') {
      this.failed(req, 'credentials', undefined, repository);
      throw this.unauthorized(req, access, presented.why);
    }
    const tokens = this.opts.tokens;
    if (tokens === undefined) {
      this.failed(req, 'token', undefined, repository);
      throw this.unauthorized(req, access, 'this registry takes Basic credentials, not Bearer tokens');
    }
    try {
      const token = await tokens.verify(presented.token);
      if (token.user !== undefined && !htpasswd.has(token.user)) throw new InvalidTokenError('invalid token: its user no longer exists');
      return { user: token.user, scheme: 'bearer', token };
    } catch (err) {
      if (!(err instanceof InvalidTokenError)) throw err;
      this.failed(req, 'token', undefined, repository);
      throw this.unauthorized(req, access, err.message, 'invalid_token');
    }
  }

  private check(req: Request, caller: Caller, access: Access, primary: boolean): void {
    const { rules } = this.opts;
    if (access.repository === undefined) {
      if (access.actions.length === 0) {
        // `/v2/`: answers whether the credentials are good (docker login, podman login, kiln login).
        if (caller.scheme === 'none') throw this.unauthorized(req, access, 'authentication required');
        return;
      }
      // `_catalog`: anyone signed in (or with an anonymous token) lists what they may pull; catalogFilter does the rest.
      if (caller.scheme === 'basic') return;
      if (caller.scheme === 'bearer' && tokenCovers(caller.token?.access ?? [], CATALOG.type, CATALOG.name, ['*'])) return;
      throw this.unauthorized(req, access, 'authentication required', caller.scheme === 'bearer' ? 'insufficient_scope' : undefined);
    }
    const repository = access.repository;
    // What anonymous callers may do needs no credentials, whatever the caller sent.
    if (rules.allows(undefined, repository, access.actions)) return;
    if (caller.scheme === 'bearer') {
      if (tokenCovers(caller.token?.access ?? [], 'repository', repository, access.actions)) return;
      // A new token would carry the access: send the client back to the token endpoint.
      if (caller.user !== undefined && rules.allows(caller.user, repository, access.actions)) {
        throw this.unauthorized(req, access, `the token does not grant ${access.actions.join(', ')} on ${repository}`, 'insufficient_scope');
      }
    }
    if (caller.user === undefined) throw this.unauthorized(req, access, 'authentication required');
    if (caller.scheme === 'basic' && rules.allows(caller.user, repository, access.actions)) return;
    if (primary) this.failed(req, 'denied', caller.user, repository);
    throw this.denied(caller.user, repository, access.actions);
  }

  private unauthorized(req: Request, access: Access, message: string, error?: 'invalid_token' | 'insufficient_scope'): RegistryError {
    const tokens = this.opts.tokens;
    const scope = scopeOf(access);
    const challenge =
      tokens === undefined
        ? basicChallenge(this.opts.realm ?? 'kiln')
        : bearerChallenge(tokens.settings.realm ?? tokenRealmOf(req), tokens.settings.service, scope, error);
    const detail = access.repository === undefined ? undefined : [{ Type: 'repository', Name: access.repository, Action: access.actions.join(',') }];
    return new RegistryError('UNAUTHORIZED', message, { headers: { 'WWW-Authenticate': challenge }, detail });
  }

  private denied(user: string, repository: string, actions: readonly Action[]): RegistryError {
    const granted = this.opts.rules.permitted(user, repository);
    const missing = actions.filter((a) => !granted.has(a));
    return new RegistryError('DENIED', `user ${user} may not ${missing.join(', ')} ${repository} (no access rule grants it)`, {
      detail: { repository, actions: missing },
    });
  }

  private failed(req: Request, reason: AuthFailure['reason'], user: string | undefined, repository: string | undefined): void {
    this.opts.onAuthFailure?.({ reason, user, address: clientAddress(req), repository });
  }
}
