import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Descriptor } from '../descriptor.js';
import { isKilnError, KilnError } from '../errors.js';
import { readStreamLimited } from '../stream-util.js';
import { blobName, headBlob } from './blobs.js';
import { discard, StreamSlicer } from './body.js';
import { errorStatus, registryError } from './errors.js';
import type { HttpResponse } from './http.js';
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
    const small = options.mountFrom === undefined && options.chunkSize === undefined && desc.size <= SINGLE_POST_LIMIT;
    const bytes = small ? await smallBlobBytes(source, desc, repository) : undefined;
    const session = bytes ? await singlePost(t, repository, desc, bytes) : await startUpload(t, repository, desc, options.mountFrom);
    if (!session) return bytes ? 'uploaded' : 'mounted';
    let stream: Readable | undefined;
    try {
      stream = bytes ? Readable.from([bytes]) : await open(source);
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

/** Blobs up to this size go up in one POST (distribution-spec § single POST) where the registry supports it. */
const SINGLE_POST_LIMIT = 64 * 1024;

/** The bytes of a small blob, which must be exactly its descriptor's size. */
async function smallBlobBytes(source: BlobSource, desc: Descriptor, repository: string): Promise<Buffer> {
  const object = blobName(repository, desc.digest);
  const bytes = await readStreamLimited(await open(source), desc.size, `data for ${object}`).catch((err: unknown) => {
    throw isKilnError(err, 'TOO_LARGE') ? new KilnError('SIZE_MISMATCH', `data for ${object} is longer than the ${desc.size} bytes its descriptor declares`) : err;
  });
  if (bytes.length !== desc.size) {
    throw new KilnError('SIZE_MISMATCH', `data for ${object} is ${bytes.length} bytes, not the ${desc.size} bytes its descriptor declares`);
  }
  return bytes;
}

/**
 * Single-POST upload: POST `?digest=` with the bytes. A registry without it opens an ordinary session
 * (202, as the spec requires), returned for the PUT; undefined when the blob is stored (201).
 */
async function singlePost(t: Transport, repository: string, desc: Descriptor, bytes: Buffer): Promise<Session | undefined> {
  const url = t.url(`/v2/${repository}/blobs/uploads/`);
  url.searchParams.set('digest', desc.digest);
  const res = await t.request({
    method: 'POST',
    url,
    headers: { 'content-type': OCTET_STREAM },
    body: bytes,
    scopes: [repositoryScope(repository, 'push')],
    repository,
    retry: true,
  });
  return sessionFrom(t, res, url, `upload of ${blobName(repository, desc.digest)}`);
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
  if (res.status === 201 && mountFrom === undefined) throw await registryError(res, { registry: t.registry, object });
  return sessionFrom(t, res, url, object);
}

/** The session a POST answer opened (202), or undefined when it stored the blob already (201: mounted or single POST). */
async function sessionFrom(t: Transport, res: HttpResponse, url: URL, object: string): Promise<Session | undefined> {
  if (res.status === 201) {
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
