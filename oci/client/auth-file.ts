import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { KilnError } from '../errors.js';

/** One `auths` entry of a docker config.json or containers auth.json. */
export interface AuthFileEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

/** The parts of docker config.json / containers auth.json that hold credentials. */
export interface AuthFile {
  auths?: Record<string, AuthFileEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Username, password and identity token decoded from an entry. */
export interface DecodedAuth {
  username: string;
  password: string;
  identityToken?: string;
}

// Every name Docker Hub has gone by in config files; they all mean docker.io.
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
/** The key `docker login` writes for Docker Hub. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: where `kiln login` writes by default. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

/** The server URL a credential helper and a new `auths` key use for `host`. */
export function authKeyFor(host: string): string {
  return DOCKER_HUB_HOSTS.has(host.toLowerCase()) ? DOCKER_HUB_AUTH_KEY : host;
}

/**
 * True when an `auths`/`credHelpers` key names `host`: `host`, `https://host`, `http://host`,
 * `https://host/v1/` or `/v2/` (Docker's ConvertToHostname). Keys with a repository path are
 * containers-auth.json namespace entries and do not match a whole registry.
 */
export function keyMatchesHost(key: string, host: string): boolean {
  const bare = key.replace(/^https?:\/\//i, '');
  const slash = bare.indexOf('/');
  const keyHost = (slash === -1 ? bare : bare.slice(0, slash)).toLowerCase();
  const path = slash === -1 ? '' : bare.slice(slash);
  if (!['', '/', '/v1', '/v1/', '/v2', '/v2/'].includes(path)) return false;
  const want = host.toLowerCase();
  return keyHost === want || (DOCKER_HUB_HOSTS.has(keyHost) && DOCKER_HUB_HOSTS.has(want));
}

/** The key of `record` naming `host`, preferring the exact forms in the documented order. */
export function findHostKey(record: Record<string, unknown>, host: string): string | undefined {
  const preferred = [authKeyFor(host), host, `https://${host}`, `http://${host}`, `https://${host}/v1/`];
  for (const key of preferred) if (Object.hasOwn(record, key)) return key;
  return Object.keys(record).find((key) => keyMatchesHost(key, host));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and shape-checks an auth file; undefined when it does not exist. Contents never appear in errors. */
export async function readAuthFile(path: string): Promise<AuthFile | undefined> {
  const doc = await readJsonFile(path);
  if (doc === undefined) return undefined;
  const out: AuthFile = {};
  if (isRecord(doc.auths)) out.auths = doc.auths as Record<string, AuthFileEntry>;
  if (isRecord(doc.credHelpers)) {
    out.credHelpers = Object.fromEntries(Object.entries(doc.credHelpers).filter((e): e is [string, string] => typeof e[1] === 'string'));
  }
  if (typeof doc.credsStore === 'string' && doc.credsStore !== '') out.credsStore = doc.credsStore;
  return out;
}

/** Decodes an entry; undefined for an empty placeholder (`{}`, as Docker writes when a helper holds the secret). */
export function decodeAuthEntry(entry: unknown, key: string, path: string): DecodedAuth | undefined {
  if (!isRecord(entry)) return undefined;
  const identityToken = typeof entry.identitytoken === 'string' && entry.identitytoken !== '' ? entry.identitytoken : undefined;
  let username = typeof entry.username === 'string' ? entry.username : '';
  let password = typeof entry.password === 'string' ? entry.password : '';
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) throw new KilnError('AUTH_CONFIG', `${path}: auths["${key}"].auth is not base64 of user:password`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (identityToken) return { username, password, identityToken };
  if (username === '' && password === '') return undefined;
  return { username, password };
}

/** Stores `user:pass` for `host` in the `auths` of `file`, keeping every other key; atomic, mode 0600. */
export async function saveCredentials(file: string, host: string, username: string, password: string): Promise<void> {
  if (username.includes(':')) throw new KilnError('USAGE', `username "${username}" must not contain ":"`);
  const doc = (await readJsonFile(file)) ?? {};
  const auths = isRecord(doc.auths) ? doc.auths : {};
  const key = findHostKey(auths, host) ?? authKeyFor(host);
  // Keep fields other tools store in the entry (e.g. "email"), but not stale secrets that would win over `auth`.
  const entry: Record<string, unknown> = isRecord(auths[key]) ? { ...auths[key] } : {};
  delete entry.identitytoken;
  delete entry.username;
  delete entry.password;
  entry.auth = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  auths[key] = entry;
  doc.auths = auths;
  await writeJsonAtomic(file, doc);
}

/** Removes every `auths` entry for `host` from `file`; false when there was none. */
export async function removeCredentials(file: string, host: string): Promise<boolean> {
  const doc = await readJsonFile(file);
  if (!doc || !isRecord(doc.auths)) return false;
  const auths = doc.auths;
  const keys = Object.keys(auths).filter((key) => keyMatchesHost(key, host));
  if (keys.length === 0) return false;
  for (const key of keys) delete auths[key];
  await writeJsonAtomic(file, doc);
  return true;
}

async function readJsonFile(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('AUTH_CONFIG', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
  if (text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The parser's message quotes the file's text, which may hold secrets: leave it out.
    throw new KilnError('AUTH_CONFIG', `${path} is not valid JSON`, { hint: 'fix or remove the file' });
  }
  if (!isRecord(doc)) throw new KilnError('AUTH_CONFIG', `${path} must hold a JSON object`);
  return doc;
}

async function writeJsonAtomic(file: string, doc: Record<string, unknown>): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    // Docker writes config.json tab-indented; keep diffs small for users who version it.
    await writeFile(tmp, `${JSON.stringify(doc, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new KilnError('AUTH_CONFIG', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, { cause: err });
  }
}
