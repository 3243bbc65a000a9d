/**
 * Encoding of tar headers for layers: POSIX ustar blocks, with a PAX extended header only when a field does not fit
 * (long or non-ASCII names, big numbers, xattrs), the way Go's archive/tar writes them. Everything is a pure function
 * of its input, so the same entries always give the same bytes.
 */

/** Size of a tar block: headers and data padding come in these units. */
export const BLOCK = 512;

/** Tar type flags used in layers (POSIX ustar). */
export type TarType = 'file' | 'hardlink' | 'symlink' | 'directory';

const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', directory: '5' };

/** Header fields of one member; `name` is relative, without a trailing '/' (added for directories). */
export interface TarHeaderFields {
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  xattrs?: Record<string, Buffer>;
}

const NAME_BYTES = 100;
const PREFIX_BYTES = 155;
// Largest values the octal fields hold: 7 digits for mode/uid/gid, 11 for size/mtime.
const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;

/**
 * The header block(s) for one member, chosen as Go's archive/tar does with FormatPAX (what containerd and BuildKit
 * write): a plain ustar block (a long ASCII name split into prefix/name) when every field fits, else a PAX 'x'
 * header carrying every field that does not fit, followed by a ustar block with truncated ASCII stand-ins.
 */
export function encodeHeader(h: TarHeaderFields): Buffer {
  const name = h.type === 'directory' ? `${h.name}/` : h.name;
  const linkname = h.linkname ?? '';
  const pax = new Map<string, Buffer>();
  let ustar = true;
  let split: [string, string] | undefined;
  if (!isAscii(name) || name.length > NAME_BYTES) {
    pax.set('path', Buffer.from(name));
    split = isAscii(name) ? splitUstar(name) : undefined;
    if (!split) ustar = false;
  }
  if (!isAscii(linkname) || linkname.length > NAME_BYTES) {
    pax.set('linkpath', Buffer.from(linkname));
    ustar = false;
  }
  for (const [key, value, max] of [['uid', h.uid, MAX_ID], ['gid', h.gid, MAX_ID], ['size', h.size, MAX_SIZE]] as const) {
    if (value > max) {
      pax.set(key, Buffer.from(String(value)));
      ustar = false;
    }
  }
  for (const key of Object.keys(h.xattrs ?? {}).sort()) {
    const value = h.xattrs?.[key];
    if (value) {
      pax.set(`SCHILY.xattr.${key}`, value);
      ustar = false;
    }
  }
  const fields = {
    typeflag: TYPEFLAG[h.type],
    mode: h.mode & 0o7777,
    uid: h.uid > MAX_ID ? 0 : h.uid,
    gid: h.gid > MAX_ID ? 0 : h.gid,
    size: h.size > MAX_SIZE ? 0 : h.size,
    mtime: Math.min(Math.max(0, Math.floor(h.mtime)), MAX_SIZE),
  };
  if (ustar) {
    return ustarBlock({ ...fields, name: split ? split[1] : name, prefix: split ? split[0] : '', linkname });
  }
  const records = paxRecords(pax);
  const paxName = asciiOnly(paxHeaderName(name)).slice(0, NAME_BYTES).replace(/\/+$/, '');
  const paxBlock = ustarBlock({ name: paxName, prefix: '', typeflag: 'x', mode: 0, uid: 0, gid: 0, size: records.length, mtime: 0, linkname: '' });
  const block = ustarBlock({ ...fields, name: standIn(name), prefix: '', linkname: standIn(linkname) });
  return Buffer.concat([paxBlock, records, Buffer.alloc(padding(records.length)), block]);
}

/** The two zero blocks that end an archive (no padding to a 10 KiB record, as Go's writer). */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK);
}

/** Bytes of zero padding after `size` bytes of member data. */
export function padding(size: number): number {
  const rest = size % BLOCK;
  return rest === 0 ? 0 : BLOCK - rest;
}

/** The fields of a ustar header (what the reader also hands out, with xattrs). */
export interface UstarFields {
  name: string;
  prefix: string;
  /** The raw type flag: '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' dir, '6' FIFO… */
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'latin1');
  writeOctal(b, 100, 8, f.mode);
  writeOctal(b, 108, 8, f.uid);
  writeOctal(b, 116, 8, f.gid);
  writeOctal(b, 124, 12, f.size);
  writeOctal(b, 136, 12, f.mtime);
  b.write(f.typeflag, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'latin1');
  b.write('ustar\u000000', 257, 8, 'latin1');
  // uname/gname stay empty: names would tie the layer to the build host's passwd.
  // Go leaves the device fields empty in its PAX header blocks and zero-filled in the others; so do we.
  if (f.typeflag !== 'x') {
    writeOctal(b, 329, 8, 0);
    writeOctal(b, 337, 8, 0);
  }
  b.write(f.prefix, 345, 155, 'latin1');
  // The checksum is computed with its own field read as spaces (POSIX ustar § chksum).
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  // Six digits, NUL, space: the layout Go and GNU tar write.
  writeOctal(b, 148, 7, sum);
  b[154] = 0;
  b[155] = 0x20;
  return b;
}

/** Zero-padded octal digits filling the field but its last byte, which stays NUL. */
function writeOctal(b: Buffer, offset: number, length: number, value: number): void {
  b.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
}

/** PAX records `"<len> <key>=<value>\n"`, keys in byte order; the length counts its own digits. */
function paxRecords(pax: Map<string, Buffer>): Buffer {
  const keys = [...pax.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Buffer.concat(
    keys.map((key) => {
      const value = pax.get(key) as Buffer;
      const body = Buffer.byteLength(key) + value.length + 3;
      let length = body + String(body).length;
      if (String(length).length > String(body).length) length++;
      return Buffer.concat([Buffer.from(`${length} ${key}=`), value, Buffer.from('\n')]);
    }),
  );
}

/** Go's name for a PAX header member: `<dir>/PaxHeaders.0/<base>` (for "a/b/": "a/b/PaxHeaders.0"). */
function paxHeaderName(name: string): string {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1).replace(/\/+$/, '');
  const file = name.slice(slash + 1);
  return [dir, 'PaxHeaders.0', file].filter((p) => p !== '').join('/');
}

/**
 * What goes in a 100-byte field when the real value is in a PAX record: its ASCII characters, truncated, and
 * (as Go does, for readers that take a trailing '/' as "directory") no '/' left at the cut.
 */
function standIn(value: string): string {
  const ascii = asciiOnly(value);
  if (ascii.length <= NAME_BYTES) return ascii;
  const cut = ascii.slice(0, NAME_BYTES);
  return cut.endsWith('/') ? cut.slice(0, NAME_BYTES - 1).replace(/\/+$/, '') : cut;
}

/**
 * Splits a long ASCII name into ustar prefix (≤155 bytes) and name (≤100) at the last '/' among its first 156 bytes
 * (one fewer when that byte is a '/'), failing when either part does not fit: the rule of Go's archive/tar.
 */
function splitUstar(name: string): [string, string] | undefined {
  let length = Math.min(name.length, PREFIX_BYTES + 1);
  if (name[length - 1] === '/') length--;
  const i = name.lastIndexOf('/', length - 1);
  const rest = name.length - i - 1;
  if (i <= 0 || rest > NAME_BYTES || rest === 0 || i > PREFIX_BYTES) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) return false;
  }
  return true;
}

function asciiOnly(s: string): string {
  let out = '';
  for (const ch of s) if (isAscii(ch)) out += ch;
  return out;
}
