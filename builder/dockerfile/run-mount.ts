/** Mount types `RUN --mount=type=…` accepts. */
export type RunMountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

/** How concurrent builds share a cache mount. */
export type CacheSharing = 'shared' | 'private' | 'locked';

/**
 * One `RUN --mount=…`, decoded. String values are as written (variables not expanded) unless the mount was
 * decoded again with an `expand` function; `hasVariables` says whether that is needed.
 */
export interface RunMount {
  type: RunMountType;
  /** Where the mount appears in the container (`target`, `dst`, `destination`). */
  target?: string;
  /** Path inside `from` (bind, cache) or the secret's name (`source`, `src`). */
  source?: string;
  /** Stage name or index, or image, the mount comes from (bind, cache). */
  from?: string;
  /** Cache id (defaults to the target in BuildKit) or secret id. */
  id?: string;
  /** Cache sharing mode; BuildKit's default is `shared`. */
  sharing?: CacheSharing;
  /** Read-only: given by readonly/ro/rw, else true for bind, secret and ssh and false for cache and tmpfs. */
  readonly: boolean;
  /** Permission bits (octal in the Dockerfile) for cache, secret and ssh mounts. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** A secret or ssh mount that must be provided (`required`, `required=true`). */
  required: boolean;
  /** Environment variable a secret is exposed as (`env=`). */
  env?: string;
  /** tmpfs size limit in bytes (`size=64m`). */
  size?: number;
  /** The flag value as written, to decode again once variables can be expanded. */
  spec: string;
  /** Some value contains `$`: decode `spec` again with `decodeRunMount(spec, expand)` before use. */
  hasVariables: boolean;
}

/** A mount spec that is not valid; the parser adds the position. */
export class RunMountError extends Error {
  override readonly name = 'RunMountError';
}

const TYPES: readonly RunMountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING: readonly CacheSharing[] = ['shared', 'private', 'locked'];
const KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw',
  'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'env'];

/**
 * Decodes a `--mount` value (CSV of `key=value` fields) as BuildKit does. Without `expand`, values containing
 * `$` are kept as written and not validated (`hasVariables` is set); with it, every value is expanded first.
 */
export function decodeRunMount(spec: string, expand?: (word: string) => string): RunMount {
  const mount: RunMount = { type: 'bind', readonly: true, required: false, spec, hasVariables: false };
  let readonlyGiven = false;
  for (const field of csvFields(spec)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro' || key === 'readwrite' || key === 'rw') {
        mount.readonly = key === 'readonly' || key === 'ro';
        readonlyGiven = true;
      } else if (key === 'required') {
        requireSecretOrSsh(mount, key);
        mount.required = true;
      } else {
        throw new RunMountError(`invalid field '${field}' must be a key=value pair`);
      }
      continue;
    }
    let value = field.slice(eq + 1);
    if (key === 'from' && /\$./.test(value)) {
      throw new RunMountError(`'from' doesn't support variable expansion, define alias stage instead`);
    }
    if (expand !== undefined) {
      value = expand(value);
    } else if (value.includes('$')) {
      // Decided once the stage's variables are known; keep the text so the mount still reads sensibly.
      mount.hasVariables = true;
      if (['from', 'source', 'src', 'target', 'dst', 'destination', 'id', 'env'].includes(key)) setString(mount, key, value);
      else if (!KEYS.includes(key)) throw unexpectedKey(key, field);
      continue;
    }
    switch (key) {
      case 'type': {
        const type = value.toLowerCase() as RunMountType;
        if (!TYPES.includes(type)) throw new RunMountError(`unsupported mount type "${value}" (expected ${TYPES.join(', ')})`);
        mount.type = type;
        break;
      }
      case 'readonly':
      case 'ro':
      case 'readwrite':
      case 'rw': {
        const b = parseBool(value, key);
        mount.readonly = key === 'readonly' || key === 'ro' ? b : !b;
        readonlyGiven = true;
        break;
      }
      case 'required':
        requireSecretOrSsh(mount, key);
        mount.required = parseBool(value, key);
        break;
      case 'size':
        if (mount.type !== 'tmpfs') throw new RunMountError(`unexpected key '${key}' for mount type '${mount.type}' (size is for tmpfs)`);
        mount.size = parseRamSize(value);
        break;
      case 'sharing': {
        const sharing = value.toLowerCase() as CacheSharing;
        if (!SHARING.includes(sharing)) throw new RunMountError(`unsupported sharing value "${value}" (expected ${SHARING.join(', ')})`);
        mount.sharing = sharing;
        break;
      }
      case 'mode':
        if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) > 0xffffffff) {
          throw new RunMountError(`invalid value ${value} for mode (expected octal permission bits such as 0755)`);
        }
        mount.mode = Number.parseInt(value, 8);
        break;
      case 'uid':
      case 'gid':
        if (!/^[0-9]+$/.test(value) || Number(value) > 0xffffffff) {
          throw new RunMountError(`invalid value ${value} for ${key} (expected a number)`);
        }
        mount[key] = Number(value);
        break;
      default:
        if (!setString(mount, key, value)) throw unexpectedKey(key, field);
    }
  }
  validate(mount, readonlyGiven);
  return mount;
}

function setString(mount: RunMount, key: string, value: string): boolean {
  switch (key) {
    case 'from':
      mount.from = value;
      return true;
    case 'source':
    case 'src':
      mount.source = value;
      return true;
    case 'target':
    case 'dst':
    case 'destination':
      mount.target = value;
      return true;
    case 'id':
      mount.id = value;
      return true;
    case 'env':
      mount.env = value;
      return true;
    default:
      return false;
  }
}

function validate(mount: RunMount, readonlyGiven: boolean): void {
  if (mount.type !== 'secret' && mount.type !== 'ssh' && mount.type !== 'cache') {
    for (const key of ['mode', 'uid', 'gid'] as const) {
      if (mount[key] !== undefined) throw new RunMountError(`${key} not allowed for "${mount.type}" type mounts`);
    }
  }
  if (!readonlyGiven) mount.readonly = !(mount.type === 'cache' || mount.type === 'tmpfs');
  if (mount.type === 'secret') {
    if (mount.from !== undefined) throw new RunMountError('secret mount should not have a from');
    if (mount.sharing !== undefined) throw new RunMountError('secret mount should not define sharing');
    if (!mount.source && !mount.target && !mount.id) throw new RunMountError('invalid secret mount. one of source, target required');
    if (mount.source && mount.id) throw new RunMountError("both source and id can't be set");
  }
  if (mount.sharing !== undefined && mount.type !== 'cache') {
    throw new RunMountError(`invalid cache sharing set for ${mount.type} mount (sharing is for type=cache)`);
  }
  if ((mount.type === 'bind' || mount.type === 'cache' || mount.type === 'tmpfs') && !mount.target && !mount.hasVariables) {
    throw new RunMountError(`mount type=${mount.type} needs a target (add target=<path in the container>)`);
  }
}

function requireSecretOrSsh(mount: RunMount, key: string): void {
  if (mount.type !== 'secret' && mount.type !== 'ssh') {
    throw new RunMountError(`unexpected key '${key}' for mount type '${mount.type}' (required is for secret and ssh mounts)`);
  }
}

function unexpectedKey(key: string, field: string): RunMountError {
  return new RunMountError(`unexpected key '${key}' in '${field}' (expected one of ${KEYS.join(', ')})`);
}

// Go's strconv.ParseBool.
function parseBool(value: string, key: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new RunMountError(`invalid value for ${key}: ${value} (expected true or false)`);
}

/** Sizes as docker's units.RAMInBytes reads them: `64m`, `1.5GiB`, `100` (binary multiples). */
export function parseRamSize(value: string): number {
  const match = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (match === null) throw new RunMountError(`invalid value for size: ${value} (expected e.g. 64m or 1g)`);
  const exponent = match[2] === undefined ? 0 : 'kmgtp'.indexOf(match[2].toLowerCase()) + 1;
  return Math.floor(Number.parseFloat(match[1] ?? '0') * 1024 ** exponent);
}

/** The fields of one CSV record (`a=1,"b=x,y"`), quotes removed, `""` inside quotes meaning `"`. */
function csvFields(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new RunMountError(`failed to parse csv mounts: unterminated quote in "${text}"`);
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i];
        i++;
      }
      if (i < text.length && text[i] !== ',') {
        throw new RunMountError(`failed to parse csv mounts: extraneous or missing " in quoted-field of "${text}"`);
      }
    } else {
      const end = text.indexOf(',', i);
      field = text.slice(i, end < 0 ? text.length : end);
      if (field.includes('"')) throw new RunMountError(`failed to parse csv mounts: bare " in non-quoted-field of "${text}"`);
      i = end < 0 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}
