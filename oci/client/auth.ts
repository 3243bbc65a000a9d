import { KilnError } from '../errors.js';
import { discard, readJson } from './body.js';
import { parseWwwAuthenticate, type AuthChallenge } from './challenge.js';
import type { RegistryCredential } from './credentials.js';
import { scopeKey, scopesCover } from './scope.js';
import type { Transport } from './transport.js';
import type { HttpResponse } from './http.js';

interface CachedToken {
  token: string;
  scopes: readonly string[];
  expiresAt: number;
}

/** Context of a 401 being answered. */
export interface ChallengeContext {
  repository?: string | undefined;
  /** The Authorization header the refused request carried, if any. */
  sent?: string | undefined;
}

// distribution token-auth § Token Response Fields: tokens without expires_in last 60 s, and never less.
const MIN_TOKEN_LIFETIME_S = 60;
// Renew a little early so a token does not expire between the cache lookup and the request.
const EXPIRY_MARGIN_MS = 5_000;
const TOKEN_RESPONSE_LIMIT = 1024 * 1024;

function basicHeader(cred: RegistryCredential): string {
  return `Basic ${Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64')}`;
}

/**
 * Answers registry auth challenges: Basic with the credentials, or the Bearer token flow
 * (distribution token-auth), caching tokens per scope set. It learns the scheme from the first
 * 401 and then authorizes later requests without another round trip.
 */
export class Authenticator {
  private readonly registry: string;
  private readonly transport: Transport;
  private readonly lookup: () => Promise<RegistryCredential | undefined>;
  private credential: Promise<RegistryCredential | undefined> | undefined;
  private scheme: 'basic' | 'bearer' | undefined;
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(transport: Transport, lookup: () => Promise<RegistryCredential | undefined>) {
    this.registry = transport.registry;
    this.transport = transport;
    this.lookup = lookup;
  }

  /** The Authorization header for a request needing `scopes`, once the registry's scheme is known. */
  async authorization(scopes: readonly string[]): Promise<string | undefined> {
    if (this.scheme === 'basic') {
      const cred = await this.credentials();
      return cred ? basicHeader(cred) : undefined;
    }
    if (this.scheme === 'bearer') return `Bearer ${await this.token(scopes)}`;
    return undefined;
  }

  /** Learns from a 401's WWW-Authenticate and prepares what the retry needs; throws when nothing can help. */
  async challenge(header: string | null, scopes: readonly string[], ctx: ChallengeContext): Promise<void> {
    const challenges = parseWwwAuthenticate(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) return this.bearerChallenge(bearer, scopes, ctx);
    if (basic) {
      const cred = await this.credentials();
      if (!cred) throw this.unauthorized(ctx.repository);
      if (ctx.sent?.startsWith('Basic ')) throw this.authFailed(cred);
      this.scheme = 'basic';
      return;
    }
    throw new KilnError('UNAUTHORIZED', `registry ${this.registry} requires authentication for ${this.target(ctx.repository)} but offered no Basic or Bearer challenge`);
  }

  /** The error for a request still refused after a fresh authorization. */
  async rejected(scopes: readonly string[], repository: string | undefined): Promise<KilnError> {
    const cred = await this.credentials();
    if (!cred) return this.unauthorized(repository);
    if (this.scheme === 'basic') return this.authFailed(cred);
    // The token server accepted the credentials but the token lacks the access the registry wants.
    const wanted = scopes.map((s) => s.slice(s.lastIndexOf(':') + 1)).join(', ');
    return new KilnError('DENIED', `registry ${this.registry} denied ${this.who(cred)} ${wanted || 'access'} access to ${this.target(repository)}`, {
      hint: `check that ${this.who(cred)} may ${wanted || 'access'} ${this.target(repository)}`,
    });
  }

  private async bearerChallenge(c: AuthChallenge, scopes: readonly string[], ctx: ChallengeContext): Promise<void> {
    const realm = c.params.realm;
    let url: URL | undefined;
    try {
      url = realm ? new URL(realm) : undefined;
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
      throw new KilnError('REGISTRY', `registry ${this.registry} sent a Bearer challenge without a valid http(s) realm`);
    }
    this.scheme = 'bearer';
    this.realm = url;
    this.service = c.params.service;
    // A token that was just refused must not be served from the cache again.
    if (ctx.sent?.startsWith('Bearer ')) {
      const refused = ctx.sent.slice('Bearer '.length);
      for (const [key, cached] of this.tokens) if (cached.token === refused) this.tokens.delete(key);
    }
    const extra = (c.params.scope ?? '').split(' ').filter((s) => s !== '');
    await this.token([...scopes, ...extra]);
  }

  private async token(scopes: readonly string[]): Promise<string> {
    const now = Date.now();
    for (const cached of this.tokens.values()) {
      if (cached.expiresAt > now && scopesCover(cached.scopes, scopes)) return cached.token;
    }
    const key = scopeKey(scopes);
    let pending = this.pending.get(key);
    if (!pending) {
      // Parallel requests (layers pushed concurrently) share one token request per scope set.
      pending = this.fetchToken(scopes).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    return pending;
  }

  private async fetchToken(scopes: readonly string[]): Promise<string> {
    const realm = this.realm;
    if (!realm) throw new KilnError('INTERNAL', 'token requested before a Bearer challenge');
    const cred = await this.credentials();
    const unique = [...new Set(scopes)];
    const url = new URL(realm);
    let res: HttpResponse;
    if (cred?.identityToken) {
      // An identity token is an OAuth2 refresh token (distribution token-auth § oauth).
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'kiln' });
      if (this.service) form.set('service', this.service);
      if (unique.length > 0) form.set('scope', unique.join(' '));
      const body = new TextEncoder().encode(form.toString());
      res = await this.transport.send(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body }, true);
    } else {
      if (this.service) url.searchParams.set('service', this.service);
      for (const s of unique) url.searchParams.append('scope', s);
      const headers: Record<string, string> = cred ? { authorization: basicHeader(cred) } : {};
      res = await this.transport.send(url, { method: 'GET', headers }, true);
    }
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw cred ? this.authFailed(cred) : this.unauthorized(repositoryOf(unique));
    }
    if (!res.ok) {
      await discard(res);
      throw new KilnError('REGISTRY', `token server ${url.host} of registry ${this.registry} answered HTTP ${res.status} ${res.statusText}`.trim());
    }
    const doc = await readJson(res, TOKEN_RESPONSE_LIMIT, `token response from ${url.host}`);
    const fields = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : {};
    const token = typeof fields.token === 'string' && fields.token !== '' ? fields.token : fields.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new KilnError('REGISTRY', `token server ${url.host} of registry ${this.registry} returned no token`);
    }
    const lifetime = typeof fields.expires_in === 'number' ? Math.max(fields.expires_in, MIN_TOKEN_LIFETIME_S) : MIN_TOKEN_LIFETIME_S;
    this.tokens.set(scopeKey(unique), { token, scopes: unique, expiresAt: Date.now() + lifetime * 1000 - EXPIRY_MARGIN_MS });
    return token;
  }

  private credentials(): Promise<RegistryCredential | undefined> {
    this.credential ??= this.lookup();
    return this.credential;
  }

  private target(repository: string | undefined): string {
    return repository ? `${this.registry}/${repository}` : this.registry;
  }

  private who(cred: RegistryCredential): string {
    return cred.identityToken && !cred.username ? 'the identity token' : `user ${cred.username}`;
  }

  private unauthorized(repository: string | undefined): KilnError {
    return new KilnError('UNAUTHORIZED', `authentication required for ${this.target(repository)}: run kiln login ${this.registry}`);
  }

  private authFailed(cred: RegistryCredential): KilnError {
    const from = cred.source ? ` (from ${cred.source})` : '';
    return new KilnError('AUTH_FAILED', `registry ${this.registry} rejected the credentials of ${this.who(cred)}${from}`, {
      hint: `check the password, or run kiln login ${this.registry}`,
    });
  }
}

function repositoryOf(scopes: readonly string[]): string | undefined {
  const first = scopes.find((s) => s.startsWith('repository:'));
  return first?.slice('repository:'.length, first.lastIndexOf(':'));
}
