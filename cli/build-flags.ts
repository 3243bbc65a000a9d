import { KilnError } from '../oci/errors.js';

/** One `--output`: where a finished build goes besides the local store. */
export type BuildOutput =
  | { type: 'oci'; dest: string; tar: boolean }
  | { type: 'oci-archive'; dest: string }
  | { type: 'docker-archive'; dest: string }
  | { type: 'registry'; name?: string | undefined }
  | { type: 'local-store' };

/** `--secret id=ID,src=FILE` / `id=ID,env=VAR` (buildx), resolved to where the value comes from. */
export interface SecretFlag {
  id: string;
  file?: string;
  env?: string;
}

/**
 * Parses `--output` as buildx does: CSV `type=…,dest=…[,tar=false]`, or a bare path meaning `type=local`
 * (unsupported here: Kiln outputs images). `type=image` is an alias of registry with `push=true`.
 */
export function parseOutputFlag(value: string): BuildOutput {
  const fields = parseCsv(value, '--output');
  const type = fields.get('type');
  if (type === undefined) {
    throw new KilnError('USAGE', `--output "${value}": missing type= (expected type=oci,dest=DIR | type=oci-archive,dest=FILE | type=docker-archive,dest=FILE | type=registry)`);
  }
  const dest = fields.get('dest');
  const need = (): string => {
    if (!dest) throw new KilnError('USAGE', `--output "${value}": type=${type} needs dest=PATH`);
    return dest;
  };
  switch (type) {
    case 'oci': {
      const tar = fields.get('tar');
      if (tar !== undefined && tar !== 'true' && tar !== 'false') throw new KilnError('USAGE', `--output "${value}": tar= must be true or false`);
      // buildx writes a tarball for type=oci unless tar=false; Kiln does the same.
      return { type: 'oci', dest: need(), tar: tar !== 'false' };
    }
    case 'oci-archive':
      return { type: 'oci-archive', dest: need() };
    case 'docker-archive':
    case 'docker':
      return { type: 'docker-archive', dest: need() };
    case 'registry':
    case 'image':
      return { type: 'registry', name: fields.get('name') };
    default:
      throw new KilnError('USAGE', `--output "${value}": unsupported type "${type}" (expected oci, oci-archive, docker-archive or registry)`);
  }
}

/** Parses `--secret id=ID[,src=FILE|,source=FILE|,env=VAR]`; a bare `id` reads env var ID or file ID as buildx does. */
export function parseSecretFlag(value: string): SecretFlag {
  const fields = parseCsv(value, '--secret');
  const id = fields.get('id');
  if (!id) throw new KilnError('USAGE', `--secret "${value}": missing id= (expected id=ID,src=FILE or id=ID,env=VAR)`);
  if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new KilnError('USAGE', `--secret "${value}": id "${id}" may hold only letters, digits, _ . -`);
  const file = fields.get('src') ?? fields.get('source');
  const env = fields.get('env');
  if (file !== undefined && env !== undefined) throw new KilnError('USAGE', `--secret "${value}": give src= or env=, not both`);
  const type = fields.get('type');
  if (type !== undefined && type !== 'file' && type !== 'env') throw new KilnError('USAGE', `--secret "${value}": type must be file or env`);
  if (file !== undefined) return { id, file };
  if (env !== undefined) return { id, env };
  return type === 'file' ? { id, file: id } : { id, env: id };
}

/** `--build-arg K=V`, or bare `K` taking the value from the environment (skipped when unset, as docker does). */
export function parseBuildArgs(values: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (!key) throw new KilnError('USAGE', `--build-arg "${v}": expected KEY=VALUE or KEY`);
    if (eq >= 0) out.set(key, v.slice(eq + 1));
    else if (env[key] !== undefined) out.set(key, env[key]);
  }
  return out;
}

/** `--build-context NAME=VALUE` (oci-layout://DIR[:tag|@digest], docker-image://REF, or a directory). */
export function parseBuildContexts(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) {
      throw new KilnError('USAGE', `--build-context "${v}": expected NAME=oci-layout://DIR[:tag], NAME=docker-image://REF or NAME=DIR`);
    }
    out.set(v.slice(0, eq).toLowerCase(), v.slice(eq + 1));
  }
  return out;
}

/** `--label K=V` (repeatable). */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new KilnError('USAGE', `--label "${v}": expected KEY=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** buildx's CSV flag syntax: `k=v,k=v`, values may be double-quoted to hold commas. */
function parseCsv(value: string, flag: string): Map<string, string> {
  const out = new Map<string, string>();
  const fields = value.match(/(?:[^,"]|"[^"]*")+/g) ?? [];
  for (const field of fields) {
    const eq = field.indexOf('=');
    if (eq <= 0) {
      // buildx: `--output DIR` means type=local; `--secret ID` means id=ID.
      if (fields.length === 1 && flag === '--secret') out.set('id', field);
      else throw new KilnError('USAGE', `${flag} "${value}": "${field}" is not key=value`);
      continue;
    }
    out.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1).replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

/** Tag a `type=local` cache is stored under in its OCI layout. */
export const LOCAL_CACHE_TAG = 'kiln-cache';

/**
 * `--cache-from` / `--cache-to` as buildx writes them — `type=local,src=DIR` / `type=local,dest=DIR`,
 * `type=registry,ref=REF` — or any transport name Kiln opens (`oci:DIR[:tag]`, a registry reference).
 * Returns that transport name.
 */
export function parseCacheFlag(value: string, flag: '--cache-from' | '--cache-to'): string {
  if (!/^type=/.test(value)) return value;
  const fields = parseCsv(value, flag);
  const type = fields.get('type');
  if (type === 'local') {
    const dir = flag === '--cache-from' ? fields.get('src') : fields.get('dest');
    if (!dir) throw new KilnError('USAGE', `${flag} "${value}": type=local needs ${flag === '--cache-from' ? 'src' : 'dest'}=DIR`);
    return `oci:${dir}:${fields.get('tag') ?? LOCAL_CACHE_TAG}`;
  }
  if (type === 'registry') {
    const ref = fields.get('ref');
    if (!ref) throw new KilnError('USAGE', `${flag} "${value}": type=registry needs ref=REGISTRY/REPO:TAG`);
    return ref;
  }
  throw new KilnError('USAGE', `${flag} "${value}": unsupported type "${type ?? ''}" (expected local or registry)`);
}
