import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Descriptor } from '../descriptor.js';
import { KilnError } from '../errors.js';
import { blobName, headBlob } from './blobs.js';
import { discard, StreamSlicer } from './body.js';
import { errorStatus, registryError } from './errors.js';
import { repositoryScope } from './scope.js';
import { backoffDelay, isRetryableNetworkError, isRetryableStatus, type Transport } from './transport.js';

/**
 * Where blob bytes come from: bytes, a one-shot stream (no retry possible), or a factory giving a
 * fresh stream per attempt, which lets a failed upload restart from the beginning.
 */
export type BlobSource = Uint8Array | Readable | (() => Readable | Promise<Readable>);

/** Options of a blob upload. */
export interface UploadOptions {
  /** Upload in PATCH chunks of this many bytes (raised to the registry's OCI-Chunk-Min-Length); monolithic when absent. */
  chunkSize?: number;
  /** Try a cross-repository mount from this repository of the same registry first. */
  mountFrom?: string;
  /** HEAD first and skip the upload when the blob is there (default true). */
  skipExisting?: boolean;
}

/** How a blob came to be in the repository. */
export type UploadOutcome = 'exists' | 'mounted' | 'uploaded';

interface Session {
  location: URL;
  minChunk: number;
}

const OCTET_STREAM = 'application/octet-stream';

/**
 * Uploads a blob (distribution-spec § Pushing blobs): skipped when present, mounted when
 * `mountFrom` has it, else POST + monolithic PUT or chunked PATCHes + PUT. Retryable failures
 * restart the whole upload when the source can be replayed.
 */
export async function uploadBlob(t: Transport, repository: string, desc: Descriptor, source: BlobSource, options: UploadOptions = {}): Promise<UploadOutcome> {
  if (options.skipExisting !== false && (await headBlob(t, repository, desc.digest, 'push')) !== undefined) {
    if (source instanceof Readable) source.destroy(); // We own the stream and will never read it.
    return 'exists';
  }
  try {
    return await uploadWithRestarts(t, repository, desc, source, options);
  } catch (err) {
    if (source instanceof Readable) source.destroy(); // Nobody else will read or close it now.
    throw err;
  }
}

async function uploadWithRestarts(t: Transport, repository: string, desc: Descriptor, source: BlobSource, options: UploadOptions): Promise<UploadOutcome> {
  const replayable = !(source instanceof Readable);
  for (let attempt = 0; ; attempt++) {
    // The transport has already retried the POST itself; what follows can only restart as a whole.
    const session = await startUpload(t, repository, desc, options.mountFrom);
    if (!session) return 'mounted';
    let stream: Readable | undefined;
    try {
      stream = await open(source);
      if (options.chunkSize !== undefined) {
        await uploadChunked(t, repository, desc, session, stream, Math.max(options.chunkSize, session.minChunk));
      } else {
        await uploadMonolithic(t, repository, desc, session, stream);
      }
      return 'uploaded';
    } catch (err) {
      stream?.destroy(); // A source that is another registry's download holds a socket until closed.
      const status = errorStatus(err);
      const retryable = isRetryableNetworkError(err) || (status !== undefined && isRetryableStatus(status));
      if (!replayable || !retryable || attempt >= t.maxRetries) throw err;
      await sleep(backoffDelay(attempt, t.retryBaseMs) ?? 0);
    }
  }
}

/** Cross-repository mount (§ Mounting a blob from another repository); false when the registry did not mount it. */
export async function mountBlob(t: Transport, repository: string, desc: Descriptor, fromRepository: string): Promise<boolean> {
  const session = await startUpload(t, repository, desc, fromRepository);
  if (!session) return true;
  // The registry opened an ordinary upload instead; the caller will upload through a session of its own.
  const res = await t.request({ method: 'DELETE', url: session.location, scopes: [repositoryScope(repository, 'push')], repository });
  if (res.status !== 204 && res.status !== 200 && res.status !== 202 && res.status !== 404) {
    throw await registryError(res, { registry: t.registry, object: `cancel of upload of ${blobName(repository, desc.digest)}` });
  }
  await discard(res);
  return false;
}

/** POST that opens an upload session, or mounts (undefined) when `mountFrom` is given and the registry mounts. */
async function startUpload(t: Transport, repository: string, desc: Descriptor, mountFrom?: string): Promise<Session | undefined> {
  const url = t.url(`/v2/${repository}/blobs/uploads/`);
  const scopes = [repositoryScope(repository, 'push')];
  if (mountFrom !== undefined) {
    url.searchParams.set('mount', desc.digest);
    url.searchParams.set('from', mountFrom);
    scopes.push(repositoryScope(mountFrom, 'pull'));
  }
  // A repeated POST only leaves an abandoned session behind, which registries expire: safe to retry.
  const res = await t.request({ method: 'POST', url, scopes, repository, retry: true });
  const object = `upload of ${blobName(repository, desc.digest)}`;
  if (res.status === 201 && mountFrom !== undefined) {
    await discard(res);
    return undefined;
  }
  if (res.status !== 202) throw await registryError(res, { registry: t.registry, object });
  await discard(res);
  const location = res.headers.get('location');
  if (!location) throw new KilnError('REGISTRY', `registry ${t.registry} opened an ${object} without a Location header`);
  const minChunk = Number(res.headers.get('oci-chunk-min-length') ?? 0);
  return { location: t.url(location, url), minChunk: Number.isSafeInteger(minChunk) && minChunk > 0 ? minChunk : 0 };
}

async function open(source: BlobSource): Promise<Readable> {
  if (source instanceof Uint8Array) return Readable.from([Buffer.from(source.buffer, source.byteOffset, source.byteLength)]);
  if (source instanceof Readable) return source;
  return source();
}

/** A request body that can be sent once: a second call (to answer a 401) is refused rather than sending nothing. */
function once(stream: Readable, what: string): () => Readable {
  let used = false;
  return () => {
    if (used) throw new KilnError('UNAUTHORIZED', `cannot resend ${what}: its data stream was already consumed by a refused request`);
    used = true;
    return stream;
  };
}

function withDigest(location: URL, desc: Descriptor): URL {
  const url = new URL(location);
  url.searchParams.set('digest', desc.digest);
  return url;
}

async function uploadMonolithic(t: Transport, repository: string, desc: Descriptor, session: Session, stream: Readable): Promise<void> {
  const object = blobName(repository, desc.digest);
  const res = await t.request({
    method: 'PUT',
    url: withDigest(session.location, desc),
    // The exact length makes the HTTP client itself fail a source that is shorter or longer than the descriptor.
    headers: { 'content-type': OCTET_STREAM, 'content-length': String(desc.size) },
    body: once(stream, object),
    scopes: [repositoryScope(repository, 'push')],
    repository,
    retry: false,
  });
  if (res.status !== 201) throw await registryError(res, { registry: t.registry, object });
  await discard(res);
}

async function uploadChunked(t: Transport, repository: string, desc: Descriptor, session: Session, stream: Readable, chunkSize: number): Promise<void> {
  const object = blobName(repository, desc.digest);
  const scopes = [repositoryScope(repository, 'push')];
  const slicer = new StreamSlicer(stream);
  let location = session.location;
  try {
    for (let offset = 0; offset < desc.size; ) {
      // The descriptor fixes every chunk's length up front, so each PATCH streams from the source unbuffered;
      // a source that ends early fails its PATCH on the Content-Length (SIZE_MISMATCH).
      const length = Math.min(chunkSize, desc.size - offset);
      // Content-Range is "start-end", inclusive, without a unit (distribution-spec § Pushing a blob in chunks).
      const res = await t.request({
        method: 'PATCH',
        url: location,
        headers: { 'content-type': OCTET_STREAM, 'content-range': `${offset}-${offset + length - 1}`, 'content-length': String(length) },
        body: once(slicer.slice(length), object),
        scopes,
        repository,
        retry: false, // A PATCH that half-arrived cannot be repeated: the whole upload restarts instead.
      });
      if (res.status !== 202) throw await registryError(res, { registry: t.registry, object: `chunk at ${offset} of ${object}` });
      await discard(res);
      const next = res.headers.get('location');
      if (next) location = t.url(next, location);
      offset += length;
    }
    if (await slicer.hasMore()) {
      throw new KilnError('SIZE_MISMATCH', `${object}: the data is longer than its declared size ${desc.size}`);
    }
  } catch (err) {
    slicer.destroy();
    throw err;
  }
  const res = await t.request({
    method: 'PUT',
    url: withDigest(location, desc),
    headers: { 'content-type': OCTET_STREAM },
    scopes,
    repository,
    retry: false,
  });
  if (res.status !== 201) throw await registryError(res, { registry: t.registry, object });
  await discard(res);
}
