import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { MediaType } from '../../oci/media-types.js';
import { errorCode, imageManifest, pushBlob, putManifest, startTestRegistry, type TestRegistry } from './helpers.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(() => reg.stop({ removeDir: true }));

const json = async <T>(path: string): Promise<{ res: Response; body: T }> => {
  const res = await fetch(`${reg.url}${path}`);
  return { res, body: (await res.json()) as T };
};

describe('tags list', () => {
  const tags = ['b', 'a', 'C', '1.0', 'latest', 'a-1'];
  beforeAll(async () => {
    const m = await imageManifest(reg.url, 'disc/tags');
    for (const tag of tags) expect((await putManifest(reg.url, 'disc/tags', tag, m.bytes)).status).toBe(201);
  });
  const sorted = [...tags].sort();

  it('lists all tags in lexical order', async () => {
    const { res, body } = await json<{ name: string; tags: string[] }>('/v2/disc/tags/tags/list');
    expect(res.status).toBe(200);
    expect(body).toEqual({ name: 'disc/tags', tags: sorted });
    expect(res.headers.get('link')).toBeNull();
  });

  it('paginates with n and last, with a Link header to the next page', async () => {
    const first = await json<{ tags: string[] }>('/v2/disc/tags/tags/list?n=2');
    expect(first.body.tags).toEqual(sorted.slice(0, 2));
    expect(first.res.headers.get('link')).toBe(`</v2/disc/tags/tags/list?n=2&last=${sorted[1]}>; rel="next"`);
    const collected: string[] = [];
    let next: string | undefined = '/v2/disc/tags/tags/list?n=4';
    while (next) {
      const page: { res: Response; body: { tags: string[] } } = await json<{ tags: string[] }>(next);
      collected.push(...page.body.tags);
      next = /<([^>]+)>; rel="next"/.exec(page.res.headers.get('link') ?? '')?.[1];
    }
    expect(collected).toEqual(sorted);
    expect((await json<{ tags: string[] }>(`/v2/disc/tags/tags/list?last=${sorted[3]}`)).body.tags).toEqual(sorted.slice(4));
    const exact = await json<{ tags: string[] }>(`/v2/disc/tags/tags/list?n=${sorted.length}`);
    expect(exact.body.tags).toEqual(sorted);
    expect(exact.res.headers.get('link')).toBeNull();
  });

  it('n=0 is an empty list without Link; a bad n is 400', async () => {
    const zero = await json<{ tags: string[] }>('/v2/disc/tags/tags/list?n=0');
    expect(zero.res.status).toBe(200);
    expect(zero.body.tags).toEqual([]);
    expect(zero.res.headers.get('link')).toBeNull();
    for (const n of ['-1', 'abc', '1.5']) expect((await fetch(`${reg.url}/v2/disc/tags/tags/list?n=${n}`)).status).toBe(400);
  });

  it('is 404 NAME_UNKNOWN for an unknown repository, and an empty list for one without tags', async () => {
    const res = await fetch(`${reg.url}/v2/disc/nothing/tags/list`);
    expect(res.status).toBe(404);
    expect(await errorCode(res)).toBe('NAME_UNKNOWN');
    await pushBlob(reg.url, 'disc/untagged', 'just a blob');
    expect((await json<{ tags: string[] }>('/v2/disc/untagged/tags/list')).body.tags).toEqual([]);
  });
});

describe('catalog', () => {
  it('lists repositories in order with the same pagination', async () => {
    for (const name of ['cat/zeta', 'cat/alpha', 'cat/mid']) await pushBlob(reg.url, name, name);
    const all = await json<{ repositories: string[] }>('/v2/_catalog');
    expect(all.res.status).toBe(200);
    const repos = all.body.repositories;
    expect(repos).toEqual([...repos].sort());
    expect(repos).toEqual(expect.arrayContaining(['cat/alpha', 'cat/mid', 'cat/zeta']));
    const page = await json<{ repositories: string[] }>('/v2/_catalog?n=1&last=cat/alpha');
    expect(page.body.repositories).toEqual(['cat/mid']);
    expect(page.res.headers.get('link')).toBe('</v2/_catalog?n=1&last=cat%2Fmid>; rel="next"');
    expect((await json<{ repositories: string[] }>('/v2/_catalog?n=0')).body.repositories).toEqual([]);
  });
});

describe('referrers', () => {
  interface Index {
    schemaVersion: number;
    mediaType: string;
    manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string>; mediaType: string; size: number }>;
  }
  let subject: { mediaType: string; digest: string; size: number };
  const sig = 'application/vnd.example.signature';
  const sbom = 'application/vnd.example.sbom';
  const digests: Record<string, string> = {};

  beforeAll(async () => {
    const image = await imageManifest(reg.url, 'disc/refs');
    await putManifest(reg.url, 'disc/refs', 'v1', image.bytes);
    subject = { mediaType: MediaType.OciManifest, digest: image.digest, size: image.bytes.length };
    for (const [key, artifactType] of [['sig', sig], ['sbom', sbom]] as const) {
      const m = await imageManifest(reg.url, 'disc/refs', { subject, artifactType, annotations: { key } });
      const put = await putManifest(reg.url, 'disc/refs', m.digest, m.bytes);
      expect(put.headers.get('oci-subject')).toBe(subject.digest);
      digests[key] = m.digest;
    }
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [], subject, annotations: { key: 'index' } }));
    expect((await putManifest(reg.url, 'disc/refs', digestOf(index), index, MediaType.OciIndex)).status).toBe(201);
    digests.index = digestOf(index);
  });

  it('lists manifests whose subject is the digest, with artifactType and annotations, as an OCI index', async () => {
    const res = await fetch(`${reg.url}/v2/disc/refs/referrers/${subject.digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MediaType.OciIndex);
    const body = (await res.json()) as Index;
    expect(body.schemaVersion).toBe(2);
    expect(body.mediaType).toBe(MediaType.OciIndex);
    const byDigest = new Map(body.manifests.map((d) => [d.digest, d]));
    expect(byDigest.get(digests.sig as string)).toMatchObject({ artifactType: sig, annotations: { key: 'sig' }, mediaType: MediaType.OciManifest });
    expect(byDigest.get(digests.sbom as string)?.artifactType).toBe(sbom);
    expect(byDigest.get(digests.index as string)?.artifactType).toBeUndefined();
    expect(body.manifests).toHaveLength(3);
  });

  it('filters by artifactType and says so in OCI-Filters-Applied', async () => {
    const res = await fetch(`${reg.url}/v2/disc/refs/referrers/${subject.digest}?artifactType=${encodeURIComponent(sig)}`);
    expect(res.headers.get('oci-filters-applied')).toBe('artifactType');
    const body = (await res.json()) as Index;
    expect(body.manifests.map((d) => d.digest)).toEqual([digests.sig]);
  });

  it('answers 200 with an empty index for unknown subjects and repositories; 400 for malformed digests', async () => {
    for (const path of [`/v2/disc/refs/referrers/${digestOf('unknown')}`, `/v2/disc/none/referrers/${digestOf('unknown')}`]) {
      const res = await fetch(`${reg.url}${path}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as Index).manifests).toEqual([]);
    }
    const bad = await fetch(`${reg.url}/v2/disc/refs/referrers/sha256:nope`);
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe('DIGEST_INVALID');
  });

  it('folds in the entries of an existing sha256-<hex> tag-schema index', async () => {
    const target = digestOf('subject of a legacy client');
    const legacy = { mediaType: MediaType.OciManifest, digest: digestOf('legacy referrer'), size: 42, artifactType: sig, annotations: { key: 'legacy' } };
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [legacy] }));
    // Index entries must be in the repository (else MANIFEST_BLOB_UNKNOWN): the legacy referrer's bytes go in as a blob.
    await pushBlob(reg.url, 'disc/refs', 'legacy referrer');
    expect((await putManifest(reg.url, 'disc/refs', `sha256-${target.slice(7)}`, fallback, MediaType.OciIndex)).status).toBe(201);
    const body = (await (await fetch(`${reg.url}/v2/disc/refs/referrers/${target}`)).json()) as Index;
    expect(body.manifests).toEqual([legacy]);
    const filtered = (await (await fetch(`${reg.url}/v2/disc/refs/referrers/${target}?artifactType=${encodeURIComponent(sbom)}`)).json()) as Index;
    expect(filtered.manifests).toEqual([]);
  });
});
