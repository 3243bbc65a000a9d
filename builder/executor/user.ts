import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../../oci/errors.js';
import { resolveInRoot } from './resolve-in-root.js';

/** The identity a RUN executes as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups: those listing the user in /etc/group, only when no group was given (as Docker). */
  groups: number[];
}

/** IDs stay within 32-bit signed range, as runc and moby/sys/user require. */
const MAX_ID = 2 ** 31 - 1;

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/**
 * Resolves a Dockerfile USER value ("name", "uid", "name:group", "uid:gid") against the rootfs' /etc/passwd and
 * /etc/group. Numbers are ids, never names; a numeric user missing from passwd runs with gid 0; names must exist.
 */
export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const colon = user.indexOf(':');
  const userPart = colon < 0 ? user : user.slice(0, colon);
  const groupPart = colon < 0 ? undefined : user.slice(colon + 1);
  const userArg = parseArg(userPart, 'user', user);
  const groupArg = groupPart === undefined || groupPart === '' ? undefined : parseArg(groupPart, 'group', user);

  const passwd = parsePasswd(await readRootFile(rootfs, '/etc/passwd'));
  const group = parseGroup(await readRootFile(rootfs, '/etc/group'));

  // An empty user means the default, root; first match wins, as getpwnam does.
  const wanted = userArg ?? { id: 0 };
  const entry = passwd?.find((p) => ('id' in wanted ? p.uid === wanted.id : p.name === wanted.name));
  let uid: number;
  let gid = 0;
  if (entry !== undefined) {
    uid = entry.uid;
    gid = entry.gid;
  } else if ('id' in wanted) {
    uid = wanted.id;
  } else {
    const where = passwd === undefined ? 'the rootfs has no /etc/passwd' : 'no such entry in /etc/passwd';
    throw new KilnError('VALIDATION', `USER ${user}: unable to find user ${wanted.name}: ${where}`, {
      hint: 'create the user in an earlier RUN (useradd/adduser) or use a numeric uid',
    });
  }

  let groups: number[] = [];
  if (groupArg !== undefined) {
    const match = group?.find((g) => ('id' in groupArg ? g.gid === groupArg.id : g.name === groupArg.name));
    if (match !== undefined) gid = match.gid;
    else if ('id' in groupArg) gid = groupArg.id;
    else {
      const where = group === undefined ? 'the rootfs has no /etc/group' : 'no such entry in /etc/group';
      throw new KilnError('VALIDATION', `USER ${user}: unable to find group ${groupArg.name}: ${where}`, {
        hint: 'create the group in an earlier RUN (groupadd/addgroup) or use a numeric gid',
      });
    }
  } else if (entry !== undefined && group !== undefined) {
    groups = group.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  }
  return { uid, gid, groups };
}

type Arg = { id: number } | { name: string };

function parseArg(text: string, what: 'user' | 'group', spec: string): Arg | undefined {
  if (text === '') return undefined;
  if (/^-?[0-9]+$/.test(text)) {
    const id = Number(text);
    if (id < 0 || id > MAX_ID) {
      throw new KilnError('VALIDATION', `USER ${spec}: ${what} id ${text} is out of range 0-${MAX_ID}`, {
        hint: `use a ${what} id between 0 and ${MAX_ID}`,
      });
    }
    return { id };
  }
  return { name: text };
}

async function readRootFile(rootfs: string, path: string): Promise<string | undefined> {
  const resolved = await resolveInRoot(rootfs, path);
  if (resolved.stats === undefined || !resolved.stats.isFile()) return undefined;
  return readFile(join(rootfs, resolved.rel), 'utf8');
}

/** passwd(5) lines name:password:UID:GID:…; malformed numbers count as 0, as glibc-tolerant parsers do. */
function parsePasswd(text: string | undefined): PasswdEntry[] | undefined {
  if (text === undefined) return undefined;
  return lines(text).map((fields) => ({
    name: fields[0] ?? '',
    uid: toId(fields[2]),
    gid: toId(fields[3]),
  }));
}

/** group(5) lines name:password:GID:member,member. */
function parseGroup(text: string | undefined): GroupEntry[] | undefined {
  if (text === undefined) return undefined;
  return lines(text).map((fields) => ({
    name: fields[0] ?? '',
    gid: toId(fields[2]),
    members: (fields[3] ?? '').split(',').filter((m) => m !== ''),
  }));
}

function lines(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function toId(field: string | undefined): number {
  const n = Number(field);
  return Number.isInteger(n) ? n : 0;
}
