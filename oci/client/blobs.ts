import { holdErrors } from '../stream-util.js';
import type { Readable } from 'node:stream';
import type { Descriptor } from '../descriptor.js';
import { VerifyingStream, type Digest } from '../digest.js';
import { errorMessage, KilnError } from '../errors.js';
import type { ByteRange } from '../content/blob-store.js';
import { discard } from './body.js';
import { errorFromBody, registryError } from './errors.js';
import { repositoryScope, type RepositoryAccess } from './scope.js';
import { isRetryableNetworkError, type Transport } from './transport.js';

/** Options of a blob GET. */
export interface GetBlobOptions {
  /** Only these bytes; they cannot be verified against the digest, only counted. */
  range?: ByteRange;
  /** false: count bytes only, the consumer verifies the digest (e.g. a copy into a verifying store). */
  verify?: boolean | undefined;
}

/** Path of a blob in a repository. */
export function blobPath(repository: string, digest: Digest): string {
  return `/v2/${repository}/blobs/${digest}`;
}

/** `blob sha256:… of app`, as messages name a blob. */
export function blobName(repository: string, digest: Digest): string {
  return `blob ${digest} of ${repository}`;
}

/** HEAD of a blob: its size, or undefined when the repository does not have it. */
export async function headBlob(t: Transport, repository: string, digest: Digest, access: RepositoryAccess = 'pull'): Promise<number | undefined> {
  const res = await t.request({
    method: 'HEAD',
    url: blobPath(repository, digest),
    scopes: [repositoryScope(repository, access)],
    repository,
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) {
    throw errorFromBody(res.status, res.statusText, '', { registry: t.registry, object: blobName(repository, digest), notFound: 'BLOB_UNKNOWN' });
  }
  const size = Number(res.headers.get('content-length') ?? NaN);
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new KilnError('REGISTRY', `registry ${t.registry} answered HEAD of ${blobName(repository, digest)} without a valid Content-Length`);
  }
  return size;
}

/**
 * GET of a blob, streamed: the returned stream fails (DIGEST_MISMATCH / SIZE_MISMATCH) unless the
 * bytes match `desc`, so consumers treat data as verified only once it ends without error.
 */
export async function getBlob(t: Transport, repository: string, desc: Descriptor, options: GetBlobOptions = {}): Promise<Readable> {
  const object = blobName(repository, desc.digest);
  const subject = `${object} from ${t.registry}`;
  const range = options.range;
  const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end ?? ''}` } : {};
  const res = await t.request({ method: 'GET', url: blobPath(repository, desc.digest), headers, scopes: [repositoryScope(repository, 'pull')], repository });
  const wanted = range ? 206 : 200;
  if (res.status !== wanted) {
    if (range && res.status === 200) {
      await discard(res);
      throw new KilnError('RANGE_INVALID', `registry ${t.registry} ignored the Range request for ${object}`);
    }
    throw await registryError(res, { registry: t.registry, object, notFound: 'BLOB_UNKNOWN' });
  }
  const expectedSize = range ? (range.end ?? desc.size - 1) - range.start + 1 : desc.size;
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) !== expectedSize) {
    await discard(res);
    throw new KilnError('SIZE_MISMATCH', `${subject} is ${declared} bytes, expected ${expectedSize}`);
  }
  const countOnly = options.verify === false || range !== undefined;
  const verifier = new VerifyingStream({ expected: range ? undefined : desc.digest, expectedSize, subject, countOnly });
  const body = res.body;
  // The consumer reads only the verifier, so a connection lost mid-download must fail that stream, as a
  // KilnError a retrying uploader recognises; a consumer that gives up (or a mismatch) releases the socket.
  body.on('error', (err: unknown) => verifier.destroy(downloadError(err, subject)));
  holdErrors(verifier);
  verifier.on('close', () => body.destroy());
  body.pipe(verifier);
  return verifier;
}

function downloadError(err: unknown, subject: string): KilnError {
  if (err instanceof KilnError) return err;
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return new KilnError('NETWORK', `download of ${subject} failed: ${errorMessage(err)}${cause}`, {
    cause: err,
    detail: { retryable: isRetryableNetworkError(err) },
  });
}
