import { KilnError } from '../../oci/errors.js';
import { BLOCK, padding, type UstarFields } from './tar-header.js';

/** One member of a layer tar, with PAX and GNU long-name extensions already folded in. */
export interface LayerTarEntry extends Omit<UstarFields, 'prefix'> {
  /** SCHILY.xattr.* records, values as raw bytes. */
  xattrs: Record<string, Buffer>;
}

/** Largest PAX or GNU long-name member we buffer: real ones are a few hundred bytes. */
const MAX_META_BYTES = 1024 * 1024;
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

/**
 * Streaming reader of a layer tar (ustar, PAX, GNU long names). Unlike tar-stream it keeps PAX values as bytes
 * (xattrs are binary) and bounds extension headers. Call `next()` for each member and optionally `body()` for its
 * data; unread data is skipped by the next `next()`.
 */
export class LayerTarReader {
  private readonly source: ByteSource;
  private readonly subject: string;
  private remaining = 0;
  private pad = 0;

  constructor(input: AsyncIterable<Buffer>, subject: string) {
    this.source = new ByteSource(input[Symbol.asyncIterator](), subject);
    this.subject = subject;
  }

  /** The next member, or null at the end of the archive. */
  async next(): Promise<LayerTarEntry | null> {
    await this.source.skip(this.remaining + this.pad);
    this.remaining = 0;
    this.pad = 0;
    let pax = new Map<string, Buffer>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const block = await this.source.read(BLOCK, true);
      if (block === null || isZero(block)) return null;
      const h = this.parseBlock(block);
      if (h.typeflag === 'x' || h.typeflag === 'g' || h.typeflag === 'L' || h.typeflag === 'K') {
        if (h.size > MAX_META_BYTES) throw this.invalid(`a ${h.typeflag} header of ${h.size} bytes`, 'TOO_LARGE');
        const data = (await this.source.read(h.size, false)) as Buffer;
        await this.source.skip(padding(h.size));
        // A global header ('g') only carries archive comments in practice; docker and containerd ignore it too.
        if (h.typeflag === 'x') pax = new Map([...pax, ...this.parsePax(data)]);
        else if (h.typeflag === 'L') longName = cString(data);
        else if (h.typeflag === 'K') longLink = cString(data);
        continue;
      }
      const entry = this.applyExtensions(h, pax, longName, longLink);
      // Links, devices, directories and FIFOs have no data whatever their size field says (as Go's reader).
      if (HEADER_ONLY.has(entry.typeflag)) entry.size = 0;
      this.remaining = entry.size;
      this.pad = padding(entry.size);
      return entry;
    }
  }

  /**
   * Reads whatever follows the end-of-archive blocks (GNU tar pads to 10 KiB records), as containerd does, so the
   * whole blob is consumed; more than `max` bytes of it is refused (TOO_LARGE).
   */
  async drain(max: number): Promise<void> {
    let seen = 0;
    for (let piece = await this.source.readAny(); piece !== null; piece = await this.source.readAny()) {
      seen += piece.length;
      if (seen > max) throw new KilnError('TOO_LARGE', `layer ${this.subject}: more than ${max} bytes follow the end of the tar`);
    }
  }

  /** The current member's data, in pieces. */
  async *body(): AsyncGenerator<Buffer> {
    while (this.remaining > 0) {
      const piece = await this.source.readSome(this.remaining);
      this.remaining -= piece.length;
      yield piece;
    }
  }

  private parseBlock(b: Buffer): LayerTarEntry {
    const stored = parseNumber(b.subarray(148, 156));
    let unsigned = 0;
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const byte = i >= 148 && i < 156 ? 0x20 : (b[i] as number);
      unsigned += byte;
      signed += byte > 127 ? byte - 256 : byte;
    }
    if (stored === undefined || (stored !== unsigned && stored !== signed)) throw this.invalid('a header with a bad checksum');
    const magic = b.toString('latin1', 257, 263);
    let name = cString(b.subarray(0, 100));
    // Only POSIX ustar has the prefix field; GNU's "ustar  " keeps times there.
    if (magic === 'ustar\0') {
      const prefix = cString(b.subarray(345, 500));
      if (prefix !== '') name = `${prefix}/${name}`;
    }
    const field = (start: number, end: number, what: string): number => {
      const v = parseNumber(b.subarray(start, end));
      if (v === undefined) throw this.invalid(`a header whose ${what} field is not a number`);
      return v;
    };
    return {
      name,
      typeflag: String.fromCharCode(b[156] as number),
      mode: field(100, 108, 'mode'),
      uid: field(108, 116, 'uid'),
      gid: field(116, 124, 'gid'),
      size: field(124, 136, 'size'),
      mtime: field(136, 148, 'mtime'),
      linkname: cString(b.subarray(157, 257)),
      xattrs: {},
    };
  }

  private applyExtensions(h: LayerTarEntry, pax: Map<string, Buffer>, longName?: string, longLink?: string): LayerTarEntry {
    const out = { ...h, name: longName ?? h.name, linkname: longLink ?? h.linkname };
    const num = (key: string): number | undefined => {
      const raw = pax.get(key);
      if (raw === undefined) return undefined;
      const v = Number(raw.toString('latin1'));
      if (!Number.isFinite(v) || v < 0) throw this.invalid(`a PAX ${key} record "${raw.toString('latin1').slice(0, 40)}"`);
      return Math.floor(v);
    };
    for (const [key, value] of pax) {
      if (key === 'path') out.name = value.toString('utf8');
      else if (key === 'linkpath') out.linkname = value.toString('utf8');
      else if (key.startsWith('SCHILY.xattr.')) out.xattrs[key.slice('SCHILY.xattr.'.length)] = value;
      else if (key.startsWith('GNU.sparse.')) throw this.invalid(`a sparse file (${out.name})`);
    }
    out.size = num('size') ?? out.size;
    out.uid = num('uid') ?? out.uid;
    out.gid = num('gid') ?? out.gid;
    out.mtime = num('mtime') ?? out.mtime;
    if (out.typeflag === 'S') throw this.invalid(`a GNU sparse file (${out.name})`);
    return out;
  }

  /** PAX records: `"<len> <key>=<value>\n"` with the value kept as bytes. */
  private parsePax(data: Buffer): Map<string, Buffer> {
    const records = new Map<string, Buffer>();
    let at = 0;
    while (at < data.length) {
      if (data[at] === 0) break;
      const space = data.indexOf(0x20, at);
      const length = space < 0 ? NaN : Number(data.toString('latin1', at, space));
      if (!Number.isInteger(length) || length <= space - at + 1 || at + length > data.length || data[at + length - 1] !== 0x0a) {
        throw this.invalid('a malformed PAX record');
      }
      const record = data.subarray(space + 1, at + length - 1);
      const eq = record.indexOf(0x3d);
      if (eq < 0) throw this.invalid('a PAX record without "="');
      records.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
      at += length;
    }
    return records;
  }

  private invalid(what: string, code: 'VALIDATION' | 'TOO_LARGE' = 'VALIDATION'): KilnError {
    return new KilnError(code, `layer ${this.subject}: the tar has ${what}; the blob is corrupt or not a layer`);
  }
}

/** Pulls exact byte counts from an async iterator of buffers without copying more than needed. */
class ByteSource {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(
    private readonly it: AsyncIterator<Buffer>,
    private readonly subject: string,
  ) {}

  /** Exactly `n` bytes; null at a clean end of input when `eofOk`, else a truncation error. */
  async read(n: number, eofOk: boolean): Promise<Buffer | null> {
    while (this.buf.length < n && (await this.pull()));
    if (this.buf.length < n) {
      if (eofOk && this.buf.length === 0) return null;
      throw this.truncated();
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Between 1 and `max` bytes. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buf.length === 0 && !(await this.pull())) throw this.truncated();
    const out = this.buf.subarray(0, Math.min(max, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Whatever is buffered or arrives next; null at the end of input. */
  async readAny(): Promise<Buffer | null> {
    if (this.buf.length === 0 && !(await this.pull())) return null;
    const out = this.buf;
    this.buf = Buffer.alloc(0);
    return out;
  }

  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) left -= (await this.readSome(left)).length;
  }

  private async pull(): Promise<boolean> {
    if (this.done) return false;
    const { value, done } = await this.it.next();
    if (done) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return true;
  }

  private truncated(): KilnError {
    return new KilnError('VALIDATION', `layer ${this.subject}: the tar ends in the middle of a member; the blob is truncated`);
  }
}

/** A numeric header field: octal digits (space/NUL padded) or GNU base-256 when the top bit is set. */
function parseNumber(field: Buffer): number | undefined {
  if (field.length > 0 && ((field[0] as number) & 0x80) !== 0) {
    if (field[0] === 0xff) return undefined; // negative: no valid use in a layer
    let v = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : undefined;
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString('utf8', 0, nul < 0 ? b.length : nul);
}

function isZero(b: Buffer): boolean {
  for (const byte of b) if (byte !== 0) return false;
  return true;
}
