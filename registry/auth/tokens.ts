import { randomUUID } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { KilnError } from '../../oci/errors.js';
import type { Action } from '../context.js';
import type { TokenSettings } from './settings.js';
import type { TokenKey } from './token-key.js';

/** One entry of a token's `access` claim (distribution token-auth § JWT, "access"). */
export interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** What a verified token says: who (undefined: anonymous) and what they may do. */
export interface VerifiedToken {
  user: string | undefined;
  access: TokenAccess[];
}

/** The token endpoint's answer (distribution token-auth § Token Response Fields). */
export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
}

/** The `registry:catalog:*` resource of `GET /v2/_catalog`. */
export const CATALOG = { type: 'registry', name: 'catalog' } as const;

const accessClaim = z.array(z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) }));

/** Why a token was not accepted; `message` is safe to send to the client. */
export class InvalidTokenError extends KilnError<'UNAUTHORIZED'> {
  constructor(message: string, cause?: unknown) {
    super('UNAUTHORIZED', message, { cause });
    this.name = 'InvalidTokenError';
  }
}

/** Issues and checks the registry's ES256 JWTs. */
export class TokenService {
  readonly settings: TokenSettings;
  private readonly key: TokenKey;

  constructor(key: TokenKey, settings: TokenSettings) {
    this.key = key;
    this.settings = settings;
  }

  /** A signed token for `user` (undefined: anonymous) carrying `access`. */
  async issue(user: string | undefined, access: TokenAccess[], now = Date.now()): Promise<TokenResponse> {
    const iat = Math.floor(now / 1000);
    const jwt = new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', kid: this.key.kid })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.service)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + this.settings.expirationSeconds)
      .setJti(randomUUID());
    if (user !== undefined) jwt.setSubject(user);
    const token = await jwt.sign(this.key.privateKey);
    return { token, access_token: token, expires_in: this.settings.expirationSeconds, issued_at: new Date(iat * 1000).toISOString() };
  }

  /** Checks signature (ES256, this registry's key), issuer, audience, `exp`/`nbf` and the claim's shape; throws InvalidTokenError. */
  async verify(token: string): Promise<VerifiedToken> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, {
        algorithms: ['ES256'],
        issuer: this.settings.issuer,
        audience: this.settings.service,
        requiredClaims: ['exp', 'iat'],
        clockTolerance: 5,
      }));
    } catch (err) {
      throw new InvalidTokenError(`invalid token: ${reason(err)}`, err);
    }
    const access = accessClaim.safeParse(payload.access ?? []);
    if (!access.success) throw new InvalidTokenError('invalid token: malformed access claim');
    const sub = payload.sub;
    if (sub !== undefined && (typeof sub !== 'string' || sub === '')) throw new InvalidTokenError('invalid token: malformed subject');
    return { user: sub, access: access.data };
  }
}

/** True when `access` grants every one of `actions` on repository `name` (or `*` on it). */
export function tokenCovers(access: readonly TokenAccess[], type: string, name: string, actions: readonly string[]): boolean {
  const granted = new Set(access.filter((a) => a.type === type && a.name === name).flatMap((a) => a.actions));
  return granted.has('*') || actions.every((a) => granted.has(a));
}

/** A requested scope (`repository:NAME:pull,push`, `registry:catalog:*`). */
export interface RequestedScope {
  type: string;
  name: string;
  actions: string[];
}

/** Parses the `scope` parameters (each may hold several, space-separated): `type[(class)]:name:actions`; throws on malformed ones. */
export function parseScopes(values: readonly string[]): RequestedScope[] {
  const scopes: RequestedScope[] = [];
  for (const scope of values.flatMap((v) => v.split(' ')).filter((s) => s !== '')) {
    const first = scope.indexOf(':');
    const last = scope.lastIndexOf(':');
    const type = scope.slice(0, first).replace(/\([^)]*\)$/, '');
    const name = scope.slice(first + 1, last);
    const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
    if (first <= 0 || last === first || name === '' || !/^[a-z]+$/.test(type)) {
      throw new KilnError('UNSUPPORTED', `malformed scope ${JSON.stringify(scope.slice(0, 200))}: expected repository:NAME:ACTIONS`);
    }
    scopes.push({ type, name, actions });
  }
  return scopes;
}

/** Repository actions a scope asks for (`*` meaning all three), unknown ones dropped. */
export function requestedActions(actions: readonly string[]): Action[] {
  const all: Action[] = ['pull', 'push', 'delete'];
  return actions.includes('*') ? all : all.filter((a) => actions.includes(a));
}

function reason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature does not verify with this registry’s key';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `${err.claim} claim is not valid here`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'only ES256 tokens are accepted';
  return 'malformed';
}
