import { createHmac, randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { errorMessage, KilnError } from '../../oci/errors.js';
import type { RegistryLogger } from '../logger.js';

/** A bcrypt hash as `htpasswd -B` writes it (`$2y$`), or as other tools do (`$2a$`, `$2b$`). */
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
/** How often, at most, the file is checked for changes. */
const RECHECK_MS = 1000;
/** Verified passwords remembered (so Basic on every request does not cost a bcrypt each time). */
const VERIFIED_MAX = 10_000;
/** Compared against for unknown users, so they take as long to refuse as wrong passwords. */
const DUMMY_HASH = bcrypt.hashSync('kiln-dummy-password', 5);

/** Parses htpasswd text: `user:hash` lines, blank lines and `#` comments skipped; anything but bcrypt is refused. */
export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const users = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${file}:${i + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new KilnError('USAGE', `${where}: expected user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT.test(hash)) {
      throw new KilnError('USAGE', `${where}: the password of ${JSON.stringify(user)} is ${hashKind(hash)}, not bcrypt`, {
        hint: `recreate it with htpasswd -B ${file} ${user}`,
      });
    }
    if (users.has(user)) throw new KilnError('USAGE', `${where}: user ${JSON.stringify(user)} appears twice`);
    users.set(user, hash);
  });
  return users;
}

/** Names the hash scheme (never the hash) for error messages. */
function hashKind(hash: string): string {
  if (hash.startsWith('$apr1$')) return 'an Apache MD5 hash ($apr1$)';
  if (hash.startsWith('{SHA}')) return 'a SHA-1 hash ({SHA})';
  if (hash.startsWith('$1$') || hash.startsWith('$5$') || hash.startsWith('$6$')) return `a crypt(3) hash (${hash.slice(0, 3)})`;
  if (hash.startsWith('$2')) return 'a malformed bcrypt hash';
  return hash === '' ? 'empty' : 'a plain-text or crypt password';
}

interface Snapshot {
  users: Map<string, string>;
  /** mtime, size and inode: a change of any means the file was rewritten. */
  version: string;
}

/**
 * The users of an htpasswd file, re-read when the file changes (checked at most once a second, when a
 * password is verified). A file that becomes unreadable or invalid keeps the last good contents, and is logged.
 */
export class HtpasswdFile {
  readonly path: string;
  private snapshot: Snapshot;
  private checkedAt = Date.now();
  private checking: Promise<void> | undefined;
  private readonly logger: RegistryLogger;
  private readonly secret = randomBytes(32);
  /** HMAC of user and password → the hash it was verified against. */
  private readonly verified = new Map<string, string>();

  private constructor(path: string, snapshot: Snapshot, logger: RegistryLogger) {
    this.path = path;
    this.snapshot = snapshot;
    this.logger = logger;
  }

  /** Reads the file; a missing file or a bad line is a USAGE error naming the file (and line). */
  static async load(path: string, logger: RegistryLogger): Promise<HtpasswdFile> {
    return new HtpasswdFile(path, await read(path), logger);
  }

  /** True when the password is right; false for unknown users and wrong passwords alike. */
  async verify(user: string, password: string): Promise<boolean> {
    await this.refresh();
    const hash = this.snapshot.users.get(user);
    if (hash === undefined) {
      await bcrypt.compare(password, DUMMY_HASH);
      return false;
    }
    const key = createHmac('sha256', this.secret).update(user).update('\0').update(password).digest('base64');
    if (this.verified.get(key) === hash) return true;
    if (!(await bcrypt.compare(password, hash))) return false;
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(key, hash);
    return true;
  }

  /** True when `user` is in the file (as of the last check). */
  has(user: string): boolean {
    return this.snapshot.users.has(user);
  }

  /** Re-reads the file when it changed since the last look (at most once per RECHECK_MS). */
  async refresh(now = Date.now()): Promise<void> {
    if (now - this.checkedAt < RECHECK_MS) return;
    this.checking ??= this.check().finally(() => {
      this.checking = undefined;
      this.checkedAt = Date.now();
    });
    await this.checking;
  }

  private async check(): Promise<void> {
    try {
      if ((await version(this.path)) === this.snapshot.version) return;
      const next = await read(this.path);
      this.snapshot = next;
      this.verified.clear();
      this.logger.info({ file: this.path, users: next.users.size }, 'htpasswd file reloaded');
    } catch (err) {
      this.logger.error({ file: this.path, err: errorMessage(err) }, 'htpasswd file not reloaded; the previous contents stay in force');
    }
  }
}

async function version(path: string): Promise<string> {
  const s = await stat(path, { bigint: true });
  return `${s.mtimeNs}:${s.size}:${s.ino}`;
}

async function read(path: string): Promise<Snapshot> {
  let text: string;
  let v: string;
  try {
    v = await version(path);
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new KilnError('USAGE', `auth.htpasswd.path: cannot read htpasswd file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return { users: parseHtpasswd(text, path), version: v };
}
