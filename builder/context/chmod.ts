import { KilnError } from '../../oci/errors.js';

// COPY/ADD --chmod: an octal mode up to 07777, or a symbolic one as chmod(1) writes it (Dockerfile reference
// § COPY --chmod; BuildKit applies BSD setmode with a zero umask). Symlinks are never chmod'ed.

/** A parsed --chmod value: `octal` when absolute, and `apply` giving a source entry's new permission bits. */
export interface ChmodSpec {
  text: string;
  /** Set for an octal value: it is also the mode of destination directories the copy creates. */
  octal: number | undefined;
  apply(mode: number, isDirectory: boolean): number;
}

type Op = '+' | '-' | '=';
interface Action {
  op: Op;
  /** Bits named by r/w/x/s/t. */
  perm: number;
  /** 'X' was given. */
  condX: boolean;
  /** u/g/o: copy that class's current bits. */
  copyFrom: 'u' | 'g' | 'o' | undefined;
}
interface Clause {
  who: string;
  actions: Action[];
}

const OCTAL_ERROR = (text: string): KilnError =>
  new KilnError('DOCKERFILE_INVALID', `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);

/** Parses an octal or symbolic --chmod value; throws DOCKERFILE_INVALID naming the value when it is invalid. */
export function parseChmod(text: string): ChmodSpec {
  if (/^[0-9]/u.test(text)) {
    if (!/^[0-7]+$/u.test(text)) throw OCTAL_ERROR(text);
    const octal = Number.parseInt(text, 8);
    if (octal > 0o7777) throw OCTAL_ERROR(text);
    return { text, octal, apply: () => octal };
  }
  const clauses = parseSymbolic(text);
  return { text, octal: undefined, apply: (mode, isDirectory) => applyClauses(clauses, mode & 0o7777, isDirectory) };
}

function parseSymbolic(text: string): Clause[] {
  const bad = (): KilnError =>
    new KilnError(
      'DOCKERFILE_INVALID',
      `invalid chmod parameter: '${text}' (expected octal such as 755, or symbolic such as u=rwX,go=rX or +x)`,
    );
  if (text === '') throw bad();
  const clauses: Clause[] = [];
  for (const part of text.split(',')) {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/u.exec(part);
    if (!m) throw bad();
    const actions: Action[] = [];
    for (const a of (m[2] as string).matchAll(/([-+=])([ugo]|[rwxXst]*)/gu)) {
      const op = a[1] as Op;
      const perms = a[2] as string;
      if (perms === 'u' || perms === 'g' || perms === 'o') {
        actions.push({ op, perm: 0, condX: false, copyFrom: perms });
        continue;
      }
      let perm = 0;
      for (const ch of perms) {
        if (ch === 'r') perm |= 0o444;
        else if (ch === 'w') perm |= 0o222;
        else if (ch === 'x') perm |= 0o111;
        else if (ch === 's') perm |= 0o6000;
        else if (ch === 't') perm |= 0o1000;
      }
      actions.push({ op, perm, condX: perms.includes('X'), copyFrom: undefined });
    }
    clauses.push({ who: m[1] as string, actions });
  }
  return clauses;
}

function whoMask(who: string): number {
  if (who === '' || who.includes('a')) return 0o6777;
  let mask = 0;
  if (who.includes('u')) mask |= 0o4700;
  if (who.includes('g')) mask |= 0o2070;
  if (who.includes('o')) mask |= 0o007;
  return mask;
}

function applyClauses(clauses: Clause[], original: number, isDirectory: boolean): number {
  let mode = original;
  for (const clause of clauses) {
    const classes = clause.who === '' || clause.who.includes('a') ? 'ugo' : clause.who;
    for (const action of clause.actions) {
      let mask = whoMask(clause.who);
      // Set-id bits for "other" alone mean nothing; the sticky bit needs u, g or no class (setmode(3)).
      const onlyOther = clause.who !== '' && !/[uga]/u.test(clause.who);
      let perm = onlyOther ? action.perm & ~0o7000 : action.perm;
      if (perm & 0o1000) mask |= 0o1000;
      if (action.copyFrom !== undefined) {
        const shift = { u: 6, g: 3, o: 0 }[action.copyFrom];
        const value = (mode >> shift) & 0o7;
        for (const cls of classes) {
          const at = { u: 6, g: 3, o: 0 }[cls as 'u' | 'g' | 'o'];
          if (at === undefined) continue;
          if (action.op !== '+') mode &= ~((action.op === '=' ? 0o7 : value) << at);
          if (action.op !== '-') mode |= value << at;
        }
        continue;
      }
      // 'X' looks at the mode before any change. BSD setmode (BuildKit's library) drops it after '=', but the
      // Dockerfile reference documents u=rwX,go=rX as giving directories 755, as chmod(1) does: that is followed.
      if (action.condX && action.op !== '-' && (isDirectory || (original & 0o111) !== 0)) perm |= 0o111;
      if (action.op === '=') mode &= ~mask;
      if (action.op === '-') mode &= ~(mask & perm);
      else mode |= mask & perm;
    }
  }
  return mode & 0o7777;
}
