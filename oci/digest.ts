import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { KilnError } from './errors.js';

/** A validated `algorithm:encoded` content digest (image-spec descriptor.md § Digests). */
export type Digest = string & { readonly __brand: 'Digest' };

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
/** Grammar from image-spec: algorithm-component (separator algorithm-component)* ":" encoded. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** Parses and validates a digest; only the registered sha256/sha512 algorithms are accepted. */
export function parseDigest(value: string): Digest {
  if (typeof value !== 'string' || !DIGEST_GRAMMAR.test(value)) {
    throw new KilnError('DIGEST_INVALID', `invalid digest "${String(value).slice(0, 200)}": expected algorithm:hex, e.g. sha256:<64 hex>`);
  }
  const [algorithm, encoded] = splitDigest(value as Digest);
  if (!(algorithm in ENCODED_LENGTH)) {
    throw new KilnError('DIGEST_INVALID', `unsupported digest algorithm "${algorithm}" in ${value}: use sha256 or sha512`);
  }
  const want = ENCODED_LENGTH[algorithm as DigestAlgorithm];
  if (encoded.length !== want || !/^[a-f0-9]+$/.test(encoded)) {
    throw new KilnError('DIGEST_INVALID', `invalid ${algorithm} digest ${value}: expected ${want} lowercase hex characters`);
  }
  return value as Digest;
}

/** True when `value` is a valid sha256/sha512 digest. */
export function isDigest(value: unknown): value is Digest {
  if (typeof value !== 'string') return false;
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

/** Splits a digest into its algorithm and encoded parts. */
export function splitDigest(d: Digest): [string, string] {
  const i = d.indexOf(':');
  return [d.slice(0, i), d.slice(i + 1)];
}

export function digestAlgorithm(d: Digest): DigestAlgorithm {
  return splitDigest(d)[0] as DigestAlgorithm;
}

export function digestHex(d: Digest): string {
  return splitDigest(d)[1];
}

/** Digest of bytes already in memory (manifests, configs). */
export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** Incremental hasher that also counts bytes. */
export class Digester {
  readonly algorithm: DigestAlgorithm;
  private readonly hash: Hash;
  private bytes = 0;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  get size(): number {
    return this.bytes;
  }

  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}

export interface VerifyOptions {
  /** Digest the data must have; when absent the stream only computes it. */
  expected?: Digest | undefined;
  /** Size the data must have; checked as data flows so an oversized stream stops early. */
  expectedSize?: number | undefined;
  /** Object the data belongs to, for error messages (e.g. "blob sha256:… of repo/x"). */
  subject?: string;
  algorithm?: DigestAlgorithm;
  /** Only count bytes (enforcing `expectedSize`), no hashing: the consumer verifies the digest. */
  countOnly?: boolean;
}

/** Names the data of `opts` in errors: its subject, else the blob it should be. */
function verifySubject(opts: VerifyOptions): string {
  return opts.subject ?? (opts.expected ? `blob ${opts.expected}` : 'data');
}

/** SIZE_MISMATCH once `size` bytes have arrived of data declared as `opts.expectedSize`; checked as data flows. */
export function oversizeError(opts: VerifyOptions, size: number): KilnError | undefined {
  const max = opts.expectedSize;
  return max !== undefined && size > max ? new KilnError('SIZE_MISMATCH', `${verifySubject(opts)} is larger than its declared size ${max}`) : undefined;
}

/** The SIZE_MISMATCH or DIGEST_MISMATCH of finished data of `size` bytes and digest `actual` (when hashed), if any. */
export function mismatchError(opts: VerifyOptions, size: number, actual: Digest | undefined): KilnError | undefined {
  const { expected, expectedSize } = opts;
  if (expectedSize !== undefined && size !== expectedSize) {
    return new KilnError('SIZE_MISMATCH', `${verifySubject(opts)} is ${size} bytes, expected ${expectedSize} (truncated or corrupt)`);
  }
  if (expected !== undefined && actual !== undefined && actual !== expected) {
    return new KilnError('DIGEST_MISMATCH', `${verifySubject(opts)} has digest ${actual}, expected ${expected} (corrupt or tampered data)`);
  }
  return undefined;
}

/**
 * Pass-through stream that hashes what flows through it and fails at the end (or as soon as the
 * size is exceeded) when the data is not what was expected. Consumers must treat data as
 * unverified until the stream finishes without error.
 */
export class VerifyingStream extends Transform {
  private readonly digester: Digester;
  private readonly opts: VerifyOptions;
  private result: Digest | undefined;
  private counted = 0;

  constructor(opts: VerifyOptions = {}) {
    super();
    this.opts = opts;
    this.digester = new Digester(opts.algorithm ?? (opts.expected ? digestAlgorithm(opts.expected) : 'sha256'));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.opts.countOnly) this.counted += chunk.length;
    else this.digester.update(chunk);
    const oversize = oversizeError(this.opts, this.size);
    if (oversize) cb(oversize);
    else cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const actual = this.opts.countOnly ? undefined : this.digester.digest();
    this.result = actual;
    cb(mismatchError(this.opts, this.size, actual));
  }

  /** The computed digest; available once the stream has ended. */
  get digest(): Digest {
    if (!this.result) throw new KilnError('INTERNAL', 'digest read before the stream ended (or of a count-only stream)');
    return this.result;
  }

  get size(): number {
    return this.opts.countOnly ? this.counted : this.digester.size;
  }

}

/** Throws DIGEST_MISMATCH unless `data` hashes to `expected`. */
export function verifyBytes(data: Uint8Array, expected: Digest, subject = `content ${expected}`): void {
  const actual = digestOf(data, digestAlgorithm(expected));
  if (actual !== expected) {
    throw new KilnError('DIGEST_MISMATCH', `${subject} has digest ${actual}, expected ${expected}`);
  }
}
