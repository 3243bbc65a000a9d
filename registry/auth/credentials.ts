import type { Request } from 'express';
import type { Access } from '../context.js';

/** What a request's `Authorization` header carries. */
export type Presented =
  | { scheme: 'none' }
  | { scheme: 'basic'; user: string; password: string }
  | { scheme: 'bearer'; token: string }
  | { scheme: 'invalid'; why: string };

/** Parses `Authorization: Basic base64(user:password)` or `Bearer TOKEN` (RFC 7617, RFC 6750). */
export function presentedCredentials(req: Request): Presented {
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === '') return { scheme: 'none' };
  const m = /^(\S+)\s+(\S+)\s*$/.exec(header);
  const scheme = m?.[1]?.toLowerCase();
  const value = m?.[2] ?? '';
  if (scheme === 'bearer') return { scheme: 'bearer', token: value };
  if (scheme !== 'basic') return { scheme: 'invalid', why: 'unsupported Authorization scheme: use Basic credentials or a Bearer token' };
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (!/^[A-Za-z0-9+/]+=*$/.test(value) || colon <= 0) return { scheme: 'invalid', why: 'malformed Basic credentials' };
  return { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The token scope of an access (`repository:NAME:pull,push`, `registry:catalog:*`), undefined for `/v2/` itself. */
export function scopeOf(access: Access): string | undefined {
  if (access.repository !== undefined) return `repository:${access.repository}:${access.actions.join(',')}`;
  return access.actions.length > 0 ? 'registry:catalog:*' : undefined;
}

/** A quoted-string parameter (RFC 9110 § 5.6.4). */
function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** `Basic realm="…",charset="UTF-8"` (RFC 7617). */
export function basicChallenge(realm: string): string {
  return `Basic realm=${quoted(realm)},charset="UTF-8"`;
}

/** `Bearer realm="…",service="…"[,scope="…"][,error="…"]` as distribution token-auth § How to authenticate describes it. */
export function bearerChallenge(realm: string, service: string, scope: string | undefined, error?: 'invalid_token' | 'insufficient_scope'): string {
  let value = `Bearer realm=${quoted(realm)},service=${quoted(service)}`;
  if (scope !== undefined) value += `,scope=${quoted(scope)}`;
  if (error !== undefined) value += `,error=${quoted(error)}`;
  return value;
}

/** `<scheme>://<host>/token` of the request, for the challenge when no `auth.token.realm` is configured. */
export function tokenRealmOf(req: Request): string {
  const host = req.headers.host;
  const local = req.socket.localAddress ?? '127.0.0.1';
  const fallback = `${local.includes(':') ? `[${local}]` : local}:${req.socket.localPort ?? 80}`;
  // The Host header is the client's own input: anything but a plain host[:port] is replaced.
  const authority = host !== undefined && /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/.test(host) ? host : fallback;
  return `${req.protocol}://${authority}/token`;
}

/** The client address rate limits and logs use (the socket's: forwarding headers are the client's to forge). */
export function clientAddress(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}
