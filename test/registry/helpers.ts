import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsBlobStore } from '../../oci/content/fs-blob-store.js';
import { type Digest, digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { createApp, type RegistryApp } from '../../registry/app.js';
import type { RegistryDeps } from '../../registry/context.js';
import { SqliteMetadataStore } from '../../registry/db/sqlite-metadata-store.js';

/** A registry app listening on a loopback port, over a real SqliteMetadataStore and FsBlobStore in a temp dir. */
export interface TestRegistry {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  dir: string;
  app: RegistryApp;
  metadata: SqliteMetadataStore;
  blobs: FsBlobStore;
  /** Stops the server and closes the database; the directory stays (for restart tests) unless `removeDir`. */
  stop(options?: { removeDir?: boolean }): Promise<void>;
}

/** Starts a registry in-process; `dir` reuses an existing data directory (a "restart"). */
export async function startTestRegistry(options: { dir?: string; deps?: Partial<RegistryDeps> } = {}): Promise<TestRegistry> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kiln-registry-')));
  const metadata = await SqliteMetadataStore.open(join(dir, 'metadata.sqlite'));
  const blobs = new FsBlobStore({ root: join(dir, 'blobs'), tmpDir: join(dir, 'tmp') });
  const app = createApp({ blobs, metadata, uploadsDir: join(dir, 'uploads'), ...options.deps });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dir,
    app,
    metadata,
    blobs,
    async stop({ removeDir = false } = {}) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.drain();
      await metadata.close();
      if (removeDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes a blob with a single POST (`?digest=`) and returns its digest. */
export async function pushBlob(url: string, name: string, data: Buffer | string): Promise<Digest> {
  const bytes = Buffer.from(data);
  const digest = digestOf(bytes);
  const res = await fetch(`${url}/v2/${name}/blobs/uploads/?digest=${digest}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`pushBlob ${name}: ${res.status} ${await res.text()}`);
  return digest;
}

/** A minimal image: config + one layer pushed to `name`, and the manifest bytes (not pushed). */
export async function imageManifest(
  url: string,
  name: string,
  options: { mediaType?: string; subject?: { mediaType: string; digest: string; size: number }; artifactType?: string; annotations?: Record<string, string>; seed?: string } = {},
): Promise<{ bytes: Buffer; digest: Digest; mediaType: string }> {
  const seed = options.seed ?? Math.random().toString(36);
  const docker = options.mediaType === MediaType.DockerManifest;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed, rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = Buffer.from(`layer ${seed}`);
  const configDigest = await pushBlob(url, name, config);
  const layerDigest = await pushBlob(url, name, layer);
  const mediaType = options.mediaType ?? MediaType.OciManifest;
  const doc = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, digest: layerDigest, size: layer.length }],
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(doc, null, 3));
  return { bytes, digest: digestOf(bytes), mediaType };
}

/** PUTs manifest bytes under `reference` with `mediaType` as Content-Type. */
export async function putManifest(url: string, name: string, reference: string, bytes: Buffer, mediaType: string = MediaType.OciManifest): Promise<Response> {
  return fetch(`${url}/v2/${name}/manifests/${reference}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: new Uint8Array(bytes) });
}

/** The first error code of a Distribution error body. */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: Array<{ code?: string }> };
  return body.errors?.[0]?.code;
}

/** A request whose path goes out exactly as written (fetch would resolve `..` segments client-side). */
export async function rawRequest(url: string, method: string, path: string): Promise<{ status: number; body: string }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request(`${url}/`, { method, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
