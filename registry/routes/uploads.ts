import type { Request, Response } from 'express';
import type { Digest } from '../../oci/digest.js';
import { isKilnError } from '../../oci/errors.js';
import type { UploadRecord } from '../db/metadata-store.js';
import type { AreaRoutes, RouteContext } from '../context.js';
import { RegistryError } from '../errors.js';
import { checkDigest, checkName } from '../routing.js';
import { type ChunkRange, uploadRange } from '../uploads.js';

type UploadRoute = { area: 'uploads'; name: string; id: string | undefined };

/** Blob uploads (distribution-spec § Pushing blobs, § Pushing a blob in chunks, § Mounting a blob). */
export const uploadRoutes: AreaRoutes<'uploads'> = {
  POST: { actions: ['pull', 'push'], handle: startUpload },
  PATCH: {
    actions: ['push'],
    handle: async (ctx, route) => {
      const id = sessionId(route);
      const range = contentRange(ctx.req);
      const record = await ctx.uploads.append(route.name, id, ctx.req, range);
      sendSession(ctx.res, 202, record);
    },
  },
  PUT: {
    actions: ['push'],
    handle: async (ctx, route) => {
      const id = sessionId(route);
      const digest = checkDigest(ctx.url.searchParams.get('digest'), 'digest query parameter');
      const range = contentRange(ctx.req);
      const info = await ctx.uploads.complete(route.name, id, digest, hasBody(ctx.req) ? ctx.req : undefined, range);
      sendCreated(ctx.res, route.name, info.digest);
    },
  },
  GET: {
    actions: ['push'],
    handle: async (ctx, route) => sendSession(ctx.res, 204, await ctx.uploads.status(route.name, sessionId(route))),
  },
  DELETE: {
    actions: ['push'],
    handle: async (ctx, route) => {
      await ctx.uploads.cancel(route.name, sessionId(route));
      ctx.res.status(204).end();
    },
  },
};

/** POST: cross-repository mount, single-POST monolithic upload (`?digest=`), or a new session. */
async function startUpload(ctx: RouteContext, route: UploadRoute): Promise<void> {
  const { url, req, res, uploads, metadata, blobs } = ctx;
  if (route.id !== undefined) throw new RegistryError('UNSUPPORTED', 'POST is not allowed on an upload session', { headers: { Allow: 'GET, PATCH, PUT, DELETE' } });
  const mount = url.searchParams.get('mount');
  const from = url.searchParams.get('from');
  if (mount !== null && from !== null && from !== route.name) {
    const digest = checkDigest(mount, 'mount digest');
    const source = checkName(from);
    if (await mayPull(ctx, source)) {
      const size = await metadata.blobSize(source, digest);
      // § Mounting a blob: 201 only when the blob is really there; otherwise an ordinary session (202).
      if (size !== undefined && (await blobs.stat(digest)) !== undefined) {
        req.resume();
        await ctx.policy?.beforeBlob(route.name, digest, size);
        await metadata.linkBlob(route.name, digest, size);
        sendCreated(res, route.name, digest);
        return;
      }
    }
  }
  const digestParam = url.searchParams.get('digest');
  if (digestParam !== null) {
    const digest = checkDigest(digestParam, 'digest query parameter');
    const record = await uploads.start(route.name);
    try {
      const info = await uploads.complete(route.name, record.id, digest, req);
      sendCreated(res, route.name, info.digest);
    } catch (err) {
      // The client never saw this session's id, so nobody could resume it: it goes with the failure.
      await uploads.cancel(route.name, record.id).catch((cancelErr: unknown) => {
        if (!isKilnError(cancelErr, 'BLOB_UPLOAD_UNKNOWN')) ctx.logger.warn({ err: cancelErr, upload: record.id }, 'could not discard a failed upload');
      });
      throw err;
    }
    return;
  }
  // A POST body without ?digest= has no meaning in the spec: it is read and dropped so the connection stays usable.
  req.resume();
  sendSession(res, 202, await uploads.start(route.name));
}

/** The mount source must be readable by the requester; when it is not, the mount quietly becomes an upload. */
async function mayPull(ctx: RouteContext, repository: string): Promise<boolean> {
  try {
    await ctx.authorize({ repository, actions: ['pull'] });
    return true;
  } catch (err) {
    if (isKilnError(err, 'UNAUTHORIZED', 'DENIED')) return false;
    throw err;
  }
}

function sessionId(route: UploadRoute): string {
  if (route.id === undefined) {
    throw new RegistryError('UNSUPPORTED', 'this method needs an upload session URL (/v2/<name>/blobs/uploads/<id>)', { headers: { Allow: 'POST' } });
  }
  return route.id;
}

/** `Content-Range: <start>-<end>` (§ Pushing a blob in chunks; inclusive, no unit, though `bytes ` is tolerated). */
function contentRange(req: Request): ChunkRange | undefined {
  const header = req.headers['content-range'];
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  const start = Number(m?.[1]);
  const end = Number(m?.[2]);
  if (!m || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) {
    throw new RegistryError('RANGE_INVALID', `invalid Content-Range ${JSON.stringify(header.slice(0, 60))}: expected <start>-<end>, inclusive`);
  }
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) !== end - start + 1) {
    throw new RegistryError('RANGE_INVALID', `Content-Range ${header} announces ${end - start + 1} bytes but Content-Length is ${length}`);
  }
  return { start, end };
}

/** True when the request carries body bytes (a closing PUT's final chunk is optional). */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

function sendSession(res: Response, status: 202 | 204, record: UploadRecord): void {
  res.status(status);
  res.setHeader('Location', `/v2/${record.repository}/blobs/uploads/${record.id}`);
  res.setHeader('Range', uploadRange(record.offset));
  res.setHeader('Docker-Upload-UUID', record.id);
  res.setHeader('Content-Length', '0');
  res.end();
}

function sendCreated(res: Response, name: string, digest: Digest): void {
  res.status(201);
  res.setHeader('Location', `/v2/${name}/blobs/${digest}`);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Content-Length', '0');
  res.end();
}
