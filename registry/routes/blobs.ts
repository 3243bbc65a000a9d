import { pipeline } from 'node:stream/promises';
import type { ByteRange } from '../../oci/content/blob-store.js';
import { FsBlobStore } from '../../oci/content/fs-blob-store.js';
import type { AreaRoutes, RouteContext } from '../context.js';
import { RegistryError } from '../errors.js';
import { sendFileBody } from '../send-file.js';
import { checkDigest } from '../routing.js';

type BlobRoute = { area: 'blobs'; name: string; digest: string };

/** Blobs (distribution-spec § Pulling blobs, § Checking if content exists, § Deleting Blobs). */
export const blobRoutes: AreaRoutes<'blobs'> = {
  GET: { actions: ['pull'], handle: (ctx, route) => serveBlob(ctx, route, true) },
  HEAD: { actions: ['pull'], handle: (ctx, route) => serveBlob(ctx, route, false) },
  DELETE: {
    actions: ['delete'],
    handle: async ({ res, metadata }, route) => {
      const digest = checkDigest(route.digest, 'blob digest');
      // Only the repository's link goes: the bytes may be shared, and garbage collection decides their fate.
      if (!(await metadata.unlinkBlob(route.name, digest))) throw blobUnknown(route.name, digest);
      res.status(202).setHeader('Docker-Content-Digest', digest);
      res.setHeader('Content-Length', '0');
      res.end();
    },
  },
};

async function serveBlob(ctx: RouteContext, route: BlobRoute, withBody: boolean): Promise<void> {
  const { req, res, metadata, blobs } = ctx;
  const digest = checkDigest(route.digest, 'blob digest');
  // Membership first: a blob another repository holds must not be readable here (§ Pulling blobs: per <name>).
  const linked = await metadata.blobSize(route.name, digest);
  const info = linked === undefined ? undefined : await blobs.stat(digest);
  if (!info) throw blobUnknown(route.name, digest);
  const range = parseRange(req.headers.range, info.size);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', `"${digest}"`);
  // Content-addressed: the bytes under a digest never change (as CNCF Distribution says too).
  res.setHeader('Cache-Control', 'max-age=31536000');
  res.setHeader('Content-Type', 'application/octet-stream');
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${info.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.status(200);
    res.setHeader('Content-Length', String(info.size));
  }
  if (!withBody || info.size === 0) {
    res.end();
    return;
  }
  if (blobs instanceof FsBlobStore) {
    const start = range?.start ?? 0;
    await sendFileBody(res, blobs.path(digest), start, (range ? range.end + 1 : info.size) - start);
    return;
  }
  await pipeline(await blobs.get(digest, range), res);
}

/**
 * One `bytes=` range (RFC 9110 § 14.1.2): `a-b`, `a-` or `-suffix`. Several ranges are answered
 * with the whole blob (a server MAY ignore Range); an unsatisfiable one is 416 with `Content-Range: bytes *\/size`.
 */
export function parseRange(header: string | undefined, size: number): Required<ByteRange> | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable(header, size);
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined; // RFC 9110: an invalid range-spec is ignored.
  }
  if (start >= size || size === 0) throw unsatisfiable(header, size);
  return { start, end };
}

function unsatisfiable(header: string, size: number): RegistryError {
  return new RegistryError('RANGE_INVALID', `range ${JSON.stringify(header.slice(0, 60))} is outside the blob of ${size} bytes`, {
    headers: { 'Content-Range': `bytes */${size}` },
  });
}

function blobUnknown(name: string, digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in repository ${name}`, { detail: { digest } });
}
