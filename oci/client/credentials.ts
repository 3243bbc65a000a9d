import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import { authKeyFor, decodeAuthEntry, defaultDockerConfigPath, findHostKey, readAuthFile } from './auth-file.js';
import { runCredentialHelper } from './cred-helper.js';

/** Credentials for one registry. `source` names where they came from, for messages (never the secret). */
export interface RegistryCredential {
  username: string;
  password: string;
  /** An OAuth2 refresh token (`identitytoken`), used instead of the password with Bearer auth. */
  identityToken?: string;
  source?: string;
}

/** Where to look for credentials. */
export interface CredentialLookupOptions {
  /** `--authfile`: consulted first, and an error when missing. */
  authfile?: string | undefined;
  /** Environment to read (default `process.env`); also the helpers' environment. */
  env?: NodeJS.ProcessEnv;
}

/** One file of the lookup chain. */
export interface CredentialFile {
  path: string;
  /** True for `--authfile`: a missing file is an error rather than skipped. */
  required: boolean;
}

/**
 * The files consulted, in order: `--authfile`, `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
 * (or `~/.docker/config.json`), `$XDG_RUNTIME_DIR/containers/auth.json`, then
 * `$XDG_CONFIG_HOME/containers/auth.json` (or `~/.config/containers/auth.json`).
 */
export function credentialFiles(options: CredentialLookupOptions = {}): CredentialFile[] {
  const env = options.env ?? process.env;
  const home = env.HOME || homedir();
  const files: CredentialFile[] = [];
  if (options.authfile) files.push({ path: options.authfile, required: true });
  if (env.REGISTRY_AUTH_FILE) files.push({ path: env.REGISTRY_AUTH_FILE, required: false });
  files.push({ path: defaultDockerConfigPath(env), required: false });
  if (env.XDG_RUNTIME_DIR) files.push({ path: join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'), required: false });
  files.push({ path: join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json'), required: false });
  // The same file may be reached twice (REGISTRY_AUTH_FILE pointing at config.json): read it once.
  return files.filter((f, i) => files.findIndex((g) => g.path === f.path) === i);
}

/** Finds credentials for registry `host` (e.g. `docker.io`, `localhost:5000`); undefined means anonymous. */
export async function lookupCredentials(host: string, options: CredentialLookupOptions = {}): Promise<RegistryCredential | undefined> {
  const env = options.env ?? process.env;
  for (const file of credentialFiles(options)) {
    if (file.required) await requireFile(file.path);
    const found = await fromFile(file.path, host, env);
    if (found) return found;
  }
  return undefined;
}

/**
 * Credentials for `host` from one file: its `credHelpers[host]`, then an `auths` entry, then its
 * `credsStore`. A helper that knows nothing falls through to the next source.
 */
async function fromFile(path: string, host: string, env: NodeJS.ProcessEnv): Promise<RegistryCredential | undefined> {
  const file = await readAuthFile(path);
  if (!file) return undefined;
  const serverUrl = authKeyFor(host);
  const helperKey = file.credHelpers ? findHostKey(file.credHelpers, host) : undefined;
  const helper = helperKey === undefined ? undefined : file.credHelpers?.[helperKey];
  if (helper) {
    const cred = await fromHelper(helper, serverUrl, path, env);
    if (cred) return cred;
  }
  const key = file.auths ? findHostKey(file.auths, host) : undefined;
  if (key !== undefined) {
    const decoded = decodeAuthEntry(file.auths?.[key], key, path);
    if (decoded) return { ...decoded, source: path };
  }
  if (file.credsStore) return fromHelper(file.credsStore, serverUrl, path, env);
  return undefined;
}

async function fromHelper(name: string, serverUrl: string, path: string, env: NodeJS.ProcessEnv): Promise<RegistryCredential | undefined> {
  const got = await runCredentialHelper(name, serverUrl, path, env);
  if (!got) return undefined;
  const source = `docker-credential-${name}`;
  // Helpers mark an identity token with the user name "<token>" (docker cli, credentials/native_store.go).
  if (got.username === '<token>') return { username: '', password: '', identityToken: got.secret, source };
  return { username: got.username, password: got.secret, source };
}

async function requireFile(path: string): Promise<void> {
  try {
    await access(path);
  } catch (err) {
    throw new KilnError('AUTH_CONFIG', `auth file ${path} does not exist`, { cause: err, hint: 'check the --authfile path' });
  }
}
