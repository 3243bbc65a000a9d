import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';

// Reads a running registry the way a client would and checks everything it serves against its digests.

const ACCEPT = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(', ');

/** Every entry of a paginated list (`_catalog`, tags/list), following `Link` headers. */
async function listAll(url: string, path: string, key: 'repositories' | 'tags'): Promise<string[]> {
  const all: string[] = [];
  let next: string | undefined = path;
  while (next !== undefined) {
    const res: Response = await fetch(new URL(next, url));
    expect(res.status, `GET ${next}`).toBe(200);
    const body = (await res.json()) as Record<string, string[] | null>;
    all.push(...(body[key] ?? []));
    next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
  }
  return all;
}

/** GETs a blob and checks its bytes against its digest and size. */
async function verifyBlob(url: string, repository: string, digest: string, size: number): Promise<void> {
  const res = await fetch(`${url}/v2/${repository}/blobs/${digest}`);
  expect(res.status, `${repository}@${digest}`).toBe(200);
  // sha256 or sha512: the algorithm is the digest's own.
  const hash = createHash(digest.slice(0, digest.indexOf(':')));
  let bytes = 0;
  for await (const chunk of res.body ?? []) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  expect(`${digest.slice(0, digest.indexOf(':'))}:${hash.digest('hex')}`, `${repository}@${digest}`).toBe(digest);
  expect(bytes).toBe(size);
}

interface Descriptorish {
  digest: string;
  size: number;
}

/** GETs a manifest by tag or digest, checks its digest, then every blob and child manifest it references. */
async function verifyManifest(url: string, repository: string, reference: string): Promise<string> {
  const res = await fetch(`${url}/v2/${repository}/manifests/${reference}`, { headers: { accept: ACCEPT } });
  expect(res.status, `${repository}:${reference}`).toBe(200);
  const bytes = Buffer.from(await res.arrayBuffer());
  const digest = digestOf(bytes);
  expect(res.headers.get('docker-content-digest'), `${repository}:${reference}`).toBe(digest);
  const doc = JSON.parse(bytes.toString('utf8')) as { config?: Descriptorish; layers?: Descriptorish[]; manifests?: Descriptorish[] };
  for (const child of doc.manifests ?? []) expect(await verifyManifest(url, repository, child.digest)).toBe(child.digest);
  for (const blob of [...(doc.config ? [doc.config] : []), ...(doc.layers ?? [])]) await verifyBlob(url, repository, blob.digest, blob.size);
  return digest;
}

/** Walks the whole registry: every repository of `_catalog`, every tag, its manifest and blobs. Returns `repo:tag` → digest. */
export async function verifyRegistry(url: string): Promise<Map<string, string>> {
  const tags = new Map<string, string>();
  for (const repository of await listAll(url, '/v2/_catalog', 'repositories')) {
    for (const tag of await listAll(url, `/v2/${repository}/tags/list`, 'tags')) tags.set(`${repository}:${tag}`, await verifyManifest(url, repository, tag));
  }
  return tags;
}
