import { resolve } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import { isLoopbackRegistry } from '../../oci/reference.js';
import type { RegistryDeps } from '../context.js';
import type { RegistryLogger } from '../logger.js';
import { AccessControl, type AuthFailure } from './access-control.js';
import { AccessRules } from './access-rules.js';
import { HtpasswdFile } from './htpasswd.js';
import { RateLimiter } from './rate-limit.js';
import type { SecurityConfig } from './settings.js';
import { tokenEndpoint } from './token-endpoint.js';
import { loadTokenKey } from './token-key.js';
import { TokenService } from './tokens.js';

/** What `setUpAccessControl` needs. */
export interface AccessControlSetup {
  security: SecurityConfig;
  /** Data directory (absolute): holds `token-key.pem`. */
  data: string;
  logger: RegistryLogger;
  /** Called on every refused credential, token or access (metrics). */
  onAuthFailure?: ((failure: AuthFailure) => void) | undefined;
}

/**
 * DESIGN.md § Defaults: authentication may be off only on loopback. Any other address needs an `auth`
 * section, or `--insecure-no-auth` (then a warning is logged).
 */
export function checkExposure(addr: string, host: string, security: SecurityConfig, logger: RegistryLogger): void {
  if (security.auth !== undefined) return;
  if (isLoopbackRegistry(host === '' ? '0.0.0.0' : host.includes(':') ? `[${host}]` : host)) return;
  if (!security.insecureNoAuth) {
    throw new KilnError('USAGE', `refusing to listen on ${addr} without authentication`, {
      hint: 'configure auth.htpasswd (see kiln serve --help), listen on a loopback address, or pass --insecure-no-auth to serve everyone everything',
    });
  }
  logger.warn({ addr }, 'serving a non-loopback address without authentication (--insecure-no-auth): anyone who can connect may push and delete');
}

/**
 * Builds the createApp hooks for authentication and rate limits: loads the htpasswd file and (with
 * `auth.token`) the token key, failing at start-up with USAGE errors. Without `auth` and `rateLimit`
 * there is nothing to set up.
 */
export async function setUpAccessControl(setup: AccessControlSetup): Promise<Pick<RegistryDeps, 'authorize' | 'catalogFilter' | 'tokenEndpoint'>> {
  const { security, logger } = setup;
  const auth = security.auth;
  const rateLimiter = security.rateLimit && new RateLimiter(security.rateLimit);
  if (auth === undefined && rateLimiter === undefined) return {};
  const rules = new AccessRules(security.access, security.groups);
  const htpasswd = auth && (await HtpasswdFile.load(resolve(auth.htpasswd.path), logger));
  const tokens = auth?.token && new TokenService(await loadTokenKey(setup.data), auth.token);
  const control = new AccessControl({ htpasswd, realm: auth?.htpasswd.realm, tokens, rules, rateLimiter, onAuthFailure: setup.onAuthFailure });
  const deps: Pick<RegistryDeps, 'authorize' | 'catalogFilter' | 'tokenEndpoint'> = { authorize: control.authorize };
  if (htpasswd === undefined || auth === undefined) return deps;
  deps.catalogFilter = control.catalogFilter;
  if (tokens !== undefined) {
    deps.tokenEndpoint = tokenEndpoint({ tokens, htpasswd, realm: auth.htpasswd.realm, rules, rateLimiter, onAuthFailure: setup.onAuthFailure });
  }
  return deps;
}
