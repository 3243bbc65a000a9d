import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { errorMessage, KilnError } from '../oci/errors.js';
import { parseRfc3339, type KeyValidity } from './key-validity.js';

// containers-policy.json(5): a global `default` list of requirements, optional per-transport scopes; every
// requirement of the chosen list must hold. Parsing is strict, as containers/image's: unknown or duplicate
// fields make the whole file invalid. Requirement types Kiln cannot check (signedBy with GPG, unknown ones)
// parse, and then reject every image: they fail closed.

/** How a signature's docker-reference must relate to the image (containers-policy.json § signedIdentity). */
export type SignedIdentity =
  | { type: 'matchExact' }
  | { type: 'matchRepoDigestOrExact' }
  | { type: 'matchRepository' }
  | { type: 'exactReference'; dockerReference: string }
  | { type: 'exactRepository'; dockerRepository: string }
  | { type: 'remapIdentity'; prefix: string; signedPrefix: string };

/** One policy requirement. */
export type PolicyRequirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'sigstoreSigned'; keys: PolicyKey[]; signedIdentity: SignedIdentity; keyValidity?: KeyValidity }
  /** A requirement Kiln cannot evaluate: it rejects, naming `name`. */
  | { type: 'unsupported'; name: string; why: string };

/** A trusted key named by a policy: a file (resolved against the policy's directory) or inline PEM. */
export type PolicyKey = { path: string } | { data: string; name: string };

/** A parsed policy: requirement lists by transport and scope. */
export interface Policy {
  default: PolicyRequirement[];
  transports: Record<string, Record<string, PolicyRequirement[]>>;
  /** The file it came from, for messages. */
  source: string;
}

/** Parses policy JSON text; relative key paths resolve against `baseDir`. Errors are POLICY_INVALID naming the field. */
export function parsePolicy(text: string, options: { source: string; baseDir: string }): Policy {
  const fail = (path: string, why: string): KilnError => new KilnError('POLICY_INVALID', `${options.source}: ${path}: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new KilnError('POLICY_INVALID', `${options.source}: not valid JSON (${errorMessage(err)})`, { cause: err });
  }
  const top = object(doc, '(top level)', fail);
  onlyFields(top, ['default', 'transports'], '(top level)', fail);
  if (!('default' in top)) throw fail('default', 'required (use [{"type":"reject"}] to reject what no scope names)');
  const policy: Policy = { default: requirements(top.default, 'default', options.baseDir, fail), transports: {}, source: options.source };
  if (top.transports !== undefined) {
    for (const [transport, scopes] of Object.entries(object(top.transports, 'transports', fail))) {
      const lists: Record<string, PolicyRequirement[]> = {};
      for (const [scope, list] of Object.entries(object(scopes, `transports.${transport}`, fail))) {
        lists[scope] = requirements(list, `transports.${transport}[${JSON.stringify(scope)}]`, options.baseDir, fail);
      }
      policy.transports[transport] = lists;
    }
  }
  return policy;
}

/** The requirements for an image, and the scope that chose them (`""` transport default, `default` global). */
export function requirementsFor(policy: Policy, transport: string, scopes: readonly string[]): { scope: string; requirements: PolicyRequirement[] } {
  const lists = policy.transports[transport];
  if (lists) {
    for (const scope of [...scopes, '']) {
      const found = lists[scope];
      if (found) return { scope: scope === '' ? `${transport} transport default` : scope, requirements: found };
    }
  }
  return { scope: 'default', requirements: policy.default };
}

/**
 * Scopes of a `docker` image, most specific first: `host/ns/repo:tag` (or `@digest`), `host/ns/repo`,
 * `host/ns`, `host`, then `*.domain` wildcards of the host's parent domains (without port).
 */
export function dockerScopes(ref: { registry: string; repository: string; tag?: string | undefined; digest?: string | undefined }): string[] {
  const repo = `${ref.registry}/${ref.repository}`;
  const scopes: string[] = [];
  if (ref.digest !== undefined) scopes.push(`${repo}@${ref.digest}`);
  else if (ref.tag !== undefined) scopes.push(`${repo}:${ref.tag}`);
  const parts = repo.split('/');
  for (let n = parts.length; n >= 1; n--) scopes.push(parts.slice(0, n).join('/'));
  const host = ref.registry.replace(/:\d+$/, '');
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) scopes.push(`*.${labels.slice(i).join('.')}`);
  return scopes;
}

/** Scopes of an `oci` layout image: `DIR:tag`, `DIR`, then each parent directory (absolute paths, "/" excluded). */
export function ociScopes(dir: string, tag: string | undefined): string[] {
  const scopes: string[] = [];
  let current = resolve(dir);
  if (tag !== undefined) scopes.push(`${current}:${tag}`);
  while (current !== '/' && current !== '') {
    scopes.push(current);
    current = resolve(current, '..');
  }
  return scopes;
}

type Fail = (path: string, why: string) => KilnError;

function requirements(value: unknown, path: string, baseDir: string, fail: Fail): PolicyRequirement[] {
  // An empty list would accept silently; containers/image refuses it, and so does Kiln.
  if (!Array.isArray(value) || value.length === 0) throw fail(path, 'must be a non-empty array of requirements');
  return value.map((entry: unknown, i) => requirement(entry, `${path}[${i}]`, baseDir, fail));
}

function requirement(value: unknown, path: string, baseDir: string, fail: Fail): PolicyRequirement {
  const req = object(value, path, fail);
  const type = req.type;
  if (typeof type !== 'string') throw fail(`${path}.type`, 'required string');
  switch (type) {
    case 'insecureAcceptAnything':
    case 'reject':
      onlyFields(req, ['type'], path, fail);
      return { type };
    case 'sigstoreSigned':
      return sigstoreSigned(req, path, baseDir, fail);
    case 'signedBy':
      return { type: 'unsupported', name: type, why: 'GPG (signedBy) signatures are not verified by Kiln' };
    default:
      return { type: 'unsupported', name: type, why: `unknown requirement type "${type}"` };
  }
}

function sigstoreSigned(req: Record<string, unknown>, path: string, baseDir: string, fail: Fail): PolicyRequirement {
  const unsupported = ['fulcio', 'pki', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas'].filter((f) => f in req);
  if (unsupported.length > 0) {
    return { type: 'unsupported', name: 'sigstoreSigned', why: `${unsupported.join(', ')} (keyless and Rekor verification) are not supported by Kiln` };
  }
  onlyFields(req, ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'signedIdentity', 'keyValidity'], path, fail);
  const sources = ['keyPath', 'keyPaths', 'keyData', 'keyDatas'].filter((f) => f in req);
  if (sources.length !== 1) throw fail(path, `exactly one of keyPath, keyPaths, keyData, keyDatas is required, found ${sources.length === 0 ? 'none' : sources.join(', ')}`);
  const paths = req.keyPath !== undefined ? [req.keyPath] : req.keyPaths;
  const datas = req.keyData !== undefined ? [req.keyData] : req.keyDatas;
  const keys: PolicyKey[] = [];
  if (paths !== undefined) {
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p !== '')) throw fail(`${path}.${sources[0] ?? ''}`, 'must name key files');
    for (const p of paths as string[]) keys.push({ path: isAbsolute(p) ? p : resolve(baseDir, p) });
  } else {
    if (!Array.isArray(datas) || datas.length === 0 || !datas.every((d) => typeof d === 'string' && /^[A-Za-z0-9+/=\s]+$/.test(d))) {
      throw fail(`${path}.${sources[0] ?? ''}`, 'must be base64 of a PEM public key');
    }
    (datas as string[]).forEach((d, i) => keys.push({ data: Buffer.from(d, 'base64').toString('utf8'), name: `${path}.keyData[${i}]` }));
  }
  const signedIdentity = req.signedIdentity === undefined ? { type: 'matchRepoDigestOrExact' as const } : identity(req.signedIdentity, `${path}.signedIdentity`, fail);
  const result: PolicyRequirement = { type: 'sigstoreSigned', keys, signedIdentity };
  if (req.keyValidity !== undefined) result.keyValidity = keyValidity(req.keyValidity, `${path}.keyValidity`, fail);
  return result;
}

/** Kiln's extension `keyValidity: {from?, until?}` (RFC 3339): when the requirement's keys may have signed. */
function keyValidity(value: unknown, path: string, fail: Fail): KeyValidity {
  const obj = object(value, path, fail);
  onlyFields(obj, ['from', 'until'], path, fail);
  const validity: KeyValidity = {};
  for (const field of ['from', 'until'] as const) {
    const text = obj[field];
    if (text === undefined) continue;
    if (typeof text !== 'string') throw fail(`${path}.${field}`, 'must be an RFC 3339 time string');
    try {
      validity[field] = parseRfc3339(text, `${path}.${field}`);
    } catch (err) {
      throw fail(`${path}.${field}`, errorMessage(err));
    }
  }
  if (validity.from === undefined && validity.until === undefined) throw fail(path, 'needs from, until or both');
  if (validity.from && validity.until && validity.from >= validity.until) throw fail(path, 'from must be before until');
  return validity;
}

function identity(value: unknown, path: string, fail: Fail): SignedIdentity {
  const id = object(value, path, fail);
  const str = (field: string): string => {
    const v = id[field];
    if (typeof v !== 'string' || v === '') throw fail(`${path}.${field}`, 'required string');
    return v;
  };
  switch (id.type) {
    case 'matchExact':
    case 'matchRepoDigestOrExact':
    case 'matchRepository':
      onlyFields(id, ['type'], path, fail);
      return { type: id.type };
    case 'exactReference':
      onlyFields(id, ['type', 'dockerReference'], path, fail);
      return { type: 'exactReference', dockerReference: str('dockerReference') };
    case 'exactRepository':
      onlyFields(id, ['type', 'dockerRepository'], path, fail);
      return { type: 'exactRepository', dockerRepository: str('dockerRepository') };
    case 'remapIdentity':
      onlyFields(id, ['type', 'prefix', 'signedPrefix'], path, fail);
      return { type: 'remapIdentity', prefix: str('prefix'), signedPrefix: str('signedPrefix') };
    default:
      throw fail(`${path}.type`, `unknown signedIdentity type ${JSON.stringify(id.type)}`);
  }
}

function object(value: unknown, path: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(path, 'must be a JSON object');
  return value as Record<string, unknown>;
}

function onlyFields(obj: Record<string, unknown>, allowed: readonly string[], path: string, fail: Fail): void {
  const extra = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw fail(path, `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((e) => JSON.stringify(e)).join(', ')}`);
}

/** Reads and parses a containers-policy.json file; relative key paths resolve from its directory. */
export async function loadPolicyFile(path: string): Promise<Policy> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KilnError('POLICY_INVALID', `cannot read policy ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return parsePolicy(text, { source: path, baseDir: dirname(resolve(path)) });
}
