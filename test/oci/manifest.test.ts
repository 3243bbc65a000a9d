import { describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { parseLayoutIndex, parseOciLayoutFile, validateOciLayoutFile } from '../../oci/layout-types.js';
import {
  childDescriptors,
  manifestDescriptor,
  MAX_MANIFEST_BYTES,
  parseManifest,
  validateImageManifest,
  validateIndex,
} from '../../oci/manifest.js';
import { MediaType } from '../../oci/media-types.js';
import { thrown } from '../support/errors.js';

const bytesOf = (doc: unknown): Buffer => Buffer.from(JSON.stringify(doc));
const desc = (mediaType: string, name: string, size = 10) => ({ mediaType, digest: digestOf(name), size });

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OciManifest,
  config: desc(MediaType.OciConfig, 'config', 7023),
  layers: [desc(MediaType.OciLayerGzip, 'l0', 32654), desc(MediaType.OciLayerGzip, 'l1', 16724), desc(MediaType.OciLayerZstd, 'l2', 73109)],
  annotations: { 'com.example.key1': 'value1' },
};

const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifest,
  config: desc(MediaType.DockerConfig, 'dconfig', 1469),
  layers: [desc(MediaType.DockerLayerGzip, 'd0', 2814559), desc(MediaType.DockerForeignLayerGzip, 'd1', 5)],
};

const platformEntry = (name: string, architecture: string, variant?: string) => ({
  ...desc(MediaType.OciManifest, name, 7143),
  platform: { architecture, os: 'linux', ...(variant ? { variant } : {}) },
});

const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [platformEntry('m-amd64', 'amd64'), platformEntry('m-arm64', 'arm64', 'v8'), desc(MediaType.OciIndex, 'nested', 7682)],
};

const dockerList = {
  schemaVersion: 2,
  mediaType: MediaType.DockerManifestList,
  manifests: [{ ...platformEntry('dm-amd64', 'amd64'), mediaType: MediaType.DockerManifest }],
};

describe('parseManifest: valid documents', () => {
  it('reads an OCI image manifest', () => {
    const raw = parseManifest(bytesOf(ociManifest));
    expect(raw.kind).toBe('manifest');
    expect(raw.mediaType).toBe(MediaType.OciManifest);
    expect(raw.parsed).toEqual(ociManifest);
  });

  it('reads an OCI manifest without mediaType (manifest.md § mediaType: SHOULD)', () => {
    const { mediaType: _, ...bare } = ociManifest;
    expect(parseManifest(bytesOf(bare)).mediaType).toBe(MediaType.OciManifest);
    expect(parseManifest(bytesOf(bare), MediaType.OciManifest).kind).toBe('manifest');
  });

  it('reads an OCI index, also without mediaType, as an index by shape', () => {
    expect(parseManifest(bytesOf(ociIndex)).kind).toBe('index');
    const { mediaType: _, ...bare } = ociIndex;
    const raw = parseManifest(bytesOf(bare));
    expect(raw.kind).toBe('index');
    expect(raw.mediaType).toBe(MediaType.OciIndex);
  });

  it('reads Docker schema2 manifests and manifest lists with their own media types', () => {
    const m = parseManifest(bytesOf(dockerManifest), MediaType.DockerManifest);
    expect(m.kind).toBe('manifest');
    expect(m.mediaType).toBe(MediaType.DockerManifest);
    const l = parseManifest(bytesOf(dockerList), MediaType.DockerManifestList);
    expect(l.kind).toBe('index');
    expect(l.mediaType).toBe(MediaType.DockerManifestList);
  });

  it('reads an artifact manifest with artifactType, the empty config and a subject', () => {
    const artifact = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: 'application/vnd.example.sbom.v1',
      config: { mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2, data: 'e30=' },
      layers: [{ mediaType: MediaType.OciEmpty, digest: digestOf('{}'), size: 2 }],
      subject: desc(MediaType.OciManifest, 'subject', 7682),
    };
    const raw = parseManifest(bytesOf(artifact));
    expect(raw.parsed.artifactType).toBe('application/vnd.example.sbom.v1');
    expect(raw.parsed.subject?.digest).toBe(digestOf('subject'));
  });

  it('accepts an empty index (image-index.md § manifests MAY be empty)', () => {
    expect(parseManifest(bytesOf({ schemaVersion: 2, manifests: [] })).kind).toBe('index');
  });

  it('ignores hints that are not manifest types and strips Content-Type parameters', () => {
    expect(parseManifest(bytesOf(ociManifest), 'application/json').kind).toBe('manifest');
    expect(parseManifest(bytesOf(ociManifest), 'application/octet-stream').kind).toBe('manifest');
    expect(parseManifest(bytesOf(ociManifest), `${MediaType.OciManifest}; charset=utf-8`).kind).toBe('manifest');
  });
});

describe('parseManifest: raw bytes', () => {
  it('keeps the received bytes and digests them, not a re-serialisation', () => {
    const odd = Buffer.from(`{\n\t"schemaVersion" :2 ,  "mediaType":"${MediaType.OciManifest}",\r\n "config": ${JSON.stringify(ociManifest.config)},"layers":[ ]   }\n\n`);
    const raw = parseManifest(odd);
    expect(raw.bytes).toBe(odd);
    expect(raw.digest).toBe(digestOf(odd));
    expect(raw.digest).not.toBe(digestOf(JSON.stringify(raw.parsed)));
  });

  it('describes itself by its bytes (manifestDescriptor)', () => {
    const bytes = Buffer.from(`  ${JSON.stringify(ociManifest, null, 3)}  `);
    expect(manifestDescriptor(parseManifest(bytes))).toEqual({ mediaType: MediaType.OciManifest, digest: digestOf(bytes), size: bytes.length });
    const artifact = { ...ociManifest, artifactType: 'application/vnd.example+json' };
    expect(manifestDescriptor(parseManifest(bytesOf(artifact))).artifactType).toBe('application/vnd.example+json');
  });

  it('lists children: config, layers and subject; or the index entries and subject', () => {
    const subject = desc(MediaType.OciManifest, 'subject');
    const m = parseManifest(bytesOf({ ...ociManifest, subject }));
    expect(childDescriptors(m).map((d) => d.digest)).toEqual([
      ociManifest.config.digest,
      ...ociManifest.layers.map((l) => l.digest),
      subject.digest,
    ]);
    const i = parseManifest(bytesOf(ociIndex));
    expect(childDescriptors(i)).toEqual(ociIndex.manifests);
  });
});

describe('parseManifest: invalid documents name the field', () => {
  const layers = [...ociManifest.layers];
  layers[2] = { ...ociManifest.layers[2]!, digest: 'sha256:xyz' as never };

  it('names the layer digest, under the manifest digest by default', () => {
    const bytes = bytesOf({ ...ociManifest, layers });
    const err = thrown(() => parseManifest(bytes));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toBe(`manifest ${digestOf(bytes)}: layers[2].digest: invalid digest "sha256:xyz"`);
  });

  it('uses the caller\'s subject', () => {
    const err = thrown(() => parseManifest(bytesOf({ ...ociManifest, layers }), undefined, 'manifest of localhost:5000/app:1'));
    expect(err.message).toBe('manifest of localhost:5000/app:1: layers[2].digest: invalid digest "sha256:xyz"');
  });

  it.each([
    ['schemaVersion missing', { ...ociManifest, schemaVersion: undefined }, 'schemaVersion: must be 2, got undefined'],
    ['schemaVersion 1', { ...ociManifest, schemaVersion: 1, mediaType: undefined }, 'schemaVersion: must be 2, got 1 (Docker schema1'],
    ['schemaVersion "2"', { ...ociManifest, schemaVersion: '2' }, 'schemaVersion: must be 2, got "2"'],
    ['unknown mediaType', { ...ociManifest, mediaType: 'application/vnd.oci.artifact.manifest.v1+json' }, 'mediaType: "application/vnd.oci.artifact.manifest.v1+json" is not an image manifest'],
    ['mediaType number', { ...ociManifest, mediaType: 2 }, 'mediaType: 2 is not'],
    ['config missing', { ...ociManifest, config: undefined }, ': config: required'],
    ['config digest', { ...ociManifest, config: { ...ociManifest.config, digest: 'sha256:XYZ' } }, ': config.digest: invalid digest "sha256:XYZ"'],
    ['config size', { ...ociManifest, config: { ...ociManifest.config, size: -5 } }, ': config.size: required non-negative integer, got -5'],
    ['layers missing', { ...ociManifest, layers: undefined }, ': layers: required array of descriptors'],
    ['layers object', { ...ociManifest, layers: {} }, ': layers: required array of descriptors, got {}'],
    ['layer mediaType', { ...ociManifest, layers: [{ ...ociManifest.layers[0], mediaType: 'tar' }] }, ': layers[0].mediaType: required media type'],
    ['layer not an object', { ...ociManifest, layers: [ociManifest.layers[0], null] }, ': layers[1]: must be a descriptor object, got null'],
    ['subject', { ...ociManifest, subject: { digest: digestOf('s') } }, ': subject.mediaType: required media type'],
    ['annotations', { ...ociManifest, annotations: { a: true } }, ': annotations["a"]: must be a string, got true'],
    ['artifactType', { ...ociManifest, artifactType: 'sbom' }, ': artifactType: must be a media type'],
    ['manifests and layers (GHSA-77vh-xpmg-72qh)', { ...ociManifest, manifests: [] }, ': manifests: not allowed in an image manifest'],
  ])('rejects %s', (_name, doc, message) => {
    const err = thrown(() => parseManifest(bytesOf(doc)));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toContain(message);
  });

  it.each([
    ['manifests missing', { schemaVersion: 2, mediaType: MediaType.OciIndex }, ': manifests: required array of descriptors'],
    ['entry digest', { ...ociIndex, manifests: [{ ...ociIndex.manifests[0], digest: 'sha256:1' }] }, ': manifests[0].digest: invalid digest "sha256:1"'],
    ['entry platform', { ...ociIndex, manifests: [ociIndex.manifests[0], { ...ociIndex.manifests[1], platform: { os: 'linux' } }] }, ': manifests[1].platform.architecture: required non-empty string'],
    ['config in an index', { ...ociIndex, config: ociManifest.config }, ': config: not allowed in an image index'],
    ['index annotations', { ...ociIndex, annotations: [] }, ': annotations: must be an object of strings'],
  ])('rejects an index with %s', (_name, doc, message) => {
    const err = thrown(() => parseManifest(bytesOf(doc)));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toContain(message);
  });

  it('rejects a declared mediaType that contradicts the hint', () => {
    const err = thrown(() => parseManifest(bytesOf(ociManifest), MediaType.DockerManifest));
    expect(err.message).toContain(`mediaType: the document declares "${MediaType.OciManifest}" but was served or described as "${MediaType.DockerManifest}"`);
    expect(thrown(() => parseManifest(bytesOf(ociIndex), MediaType.OciManifest)).code).toBe('MANIFEST_INVALID');
  });

  it('requires mediaType in Docker schema2 documents', () => {
    const { mediaType: _, ...bare } = dockerManifest;
    expect(thrown(() => parseManifest(bytesOf(bare), MediaType.DockerManifest)).message).toContain(
      `mediaType: required in a Docker schema2 document (expected "${MediaType.DockerManifest}")`,
    );
    const { mediaType: __, ...bareList } = dockerList;
    expect(thrown(() => parseManifest(bytesOf(bareList), MediaType.DockerManifestList)).message).toContain('mediaType: required');
  });

  it('rejects a manifest-shaped document served as an index', () => {
    const { mediaType: _, ...bare } = ociManifest;
    expect(thrown(() => parseManifest(bytesOf(bare), MediaType.OciIndex)).message).toContain(': config: not allowed in an image index');
  });

  it('rejects bytes that are not a JSON object, or too large', () => {
    expect(thrown(() => parseManifest(Buffer.from('{"schemaVersion":'))).message).toMatch(/^manifest sha256:[0-9a-f]{64} is not valid JSON/);
    expect(thrown(() => parseManifest(Buffer.from('[1]'))).message).toContain('must be a JSON object, got [1]');
    expect(thrown(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, 0x20))).message).toContain('over the 4 MiB limit');
  });
});

describe('validateImageManifest / validateIndex', () => {
  it('validate parsed documents directly', () => {
    expect(validateImageManifest(ociManifest)).toBe(ociManifest);
    expect(validateIndex(ociIndex)).toBe(ociIndex);
    expect(thrown(() => validateImageManifest({ ...dockerManifest, mediaType: MediaType.OciIndex }, 'm')).message).toContain('m: mediaType: must be');
    expect(thrown(() => validateIndex({ ...dockerList, mediaType: MediaType.DockerManifest }, 'i')).message).toContain('i: mediaType: must be');
  });
});

describe('OCI layout documents', () => {
  it('accepts oci-layout 1.0.0 with extra fields', () => {
    expect(parseOciLayoutFile(Buffer.from('{"imageLayoutVersion": "1.0.0"}'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(validateOciLayoutFile({ imageLayoutVersion: '1.0.0', extra: true })).toMatchObject({ imageLayoutVersion: '1.0.0' });
  });

  it.each([
    ['{"imageLayoutVersion": "2.0.0"}', 'oci-layout: imageLayoutVersion: must be "1.0.0", got "2.0.0"'],
    ['{}', 'oci-layout: imageLayoutVersion: must be "1.0.0", missing'],
    ['[]', 'oci-layout must be a JSON object'],
    ['not json', 'oci-layout is not valid JSON'],
  ])('rejects oci-layout %s', (text, message) => {
    const err = thrown(() => parseOciLayoutFile(Buffer.from(text)));
    expect(err.code).toBe('LAYOUT_INVALID');
    expect(err.message).toContain(message);
  });

  it('validates index.json as an image index, with LAYOUT_INVALID errors', () => {
    const entry = { ...desc(MediaType.OciManifest, 'm'), annotations: { 'org.opencontainers.image.ref.name': 'v1' } };
    expect(parseLayoutIndex(bytesOf({ schemaVersion: 2, manifests: [entry] })).manifests).toEqual([entry]);
    const err = thrown(() => parseLayoutIndex(bytesOf({ schemaVersion: 2, manifests: [{ ...entry, digest: 'sha256:bad' }] })));
    expect(err.code).toBe('LAYOUT_INVALID');
    expect(err.message).toBe('index.json: manifests[0].digest: invalid digest "sha256:bad"');
    expect(thrown(() => parseLayoutIndex(Buffer.from('{'))).code).toBe('LAYOUT_INVALID');
    expect(thrown(() => parseLayoutIndex(Buffer.from('{"schemaVersion":2}'))).message).toContain('index.json: manifests: required');
  });
});
