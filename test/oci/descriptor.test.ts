import { describe, expect, it } from 'vitest';
import { isMediaType, validateAnnotations, validateDescriptor, validatePlatform, validateStringArray } from '../../oci/descriptor.js';
import { digestOf } from '../../oci/digest.js';
import { KilnError } from '../../oci/errors.js';
import { MediaType } from '../../oci/media-types.js';
import { thrown } from '../support/errors.js';

const layer = {
  mediaType: MediaType.OciLayerGzip,
  digest: digestOf('layer'),
  size: 32654,
};

/** image-spec manifest.md § Guidance for an Empty Descriptor. */
const emptyDescriptor = {
  mediaType: MediaType.OciEmpty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
  data: 'e30=',
};

describe('validateDescriptor', () => {
  it('accepts a minimal descriptor and returns it unchanged', () => {
    expect(validateDescriptor(layer, 'layers[0]')).toBe(layer);
  });

  it('accepts every optional field, including unknown extension fields', () => {
    const full = {
      ...layer,
      urls: ['https://example.com/layer.tar.gz'],
      annotations: { 'org.opencontainers.image.title': 'x', empty: '' },
      artifactType: 'application/vnd.example.sbom.v1+json',
      platform: { architecture: 'arm64', os: 'linux', variant: 'v8', 'os.features': ['x'], 'os.version': '1' },
      'com.example.extension': 42,
    };
    expect(validateDescriptor(full, 'd')).toEqual(full);
  });

  it('accepts embedded data that hashes to the digest (the spec empty descriptor)', () => {
    expect(validateDescriptor(emptyDescriptor, 'config').data).toBe('e30=');
  });

  it.each([
    ['not an object', 'x', 'layers[2]: must be a descriptor object'],
    ['array', [], 'layers[2]: must be a descriptor object'],
    ['missing mediaType', { ...layer, mediaType: undefined }, 'layers[2].mediaType: required media type of the form type/subtype (RFC 6838), missing'],
    ['mediaType without subtype', { ...layer, mediaType: 'application' }, 'layers[2].mediaType: required media type'],
    ['mediaType with a space', { ...layer, mediaType: 'application/x y' }, 'layers[2].mediaType:'],
    ['mediaType number', { ...layer, mediaType: 7 }, 'layers[2].mediaType:'],
    ['short digest', { ...layer, digest: 'sha256:xyz' }, 'layers[2].digest: invalid digest "sha256:xyz"'],
    ['unknown digest algorithm', { ...layer, digest: `md5:${'a'.repeat(32)}` }, 'layers[2].digest: invalid digest'],
    ['missing digest', { ...layer, digest: undefined }, 'layers[2].digest: required digest string'],
    ['negative size', { ...layer, size: -1 }, 'layers[2].size: required non-negative integer, got -1'],
    ['fractional size', { ...layer, size: 1.5 }, 'layers[2].size:'],
    ['string size', { ...layer, size: '12' }, 'layers[2].size:'],
    ['unsafe size', { ...layer, size: 2 ** 53 }, 'layers[2].size:'],
    ['urls not an array', { ...layer, urls: 'https://x' }, 'layers[2].urls: must be an array of strings'],
    ['urls entry not a string', { ...layer, urls: ['https://x', 1] }, 'layers[2].urls[1]: must be a string'],
    ['urls entry not a URL', { ...layer, urls: ['not a url'] }, 'layers[2].urls[0]: not a URL'],
    ['annotations not an object', { ...layer, annotations: ['a'] }, 'layers[2].annotations: must be an object of strings'],
    ['annotation value not a string', { ...layer, annotations: { a: 1 } }, 'layers[2].annotations["a"]: must be a string'],
    ['bad artifactType', { ...layer, artifactType: 'sbom' }, 'layers[2].artifactType: must be a media type'],
    ['platform not an object', { ...layer, platform: 'linux/amd64' }, 'layers[2].platform: must be an object'],
    ['platform without architecture', { ...layer, platform: { os: 'linux' } }, 'layers[2].platform.architecture: required non-empty string'],
    ['platform with numeric os', { ...layer, platform: { os: 1, architecture: 'amd64' } }, 'layers[2].platform.os: required non-empty string'],
    ['platform variant number', { ...layer, platform: { os: 'linux', architecture: 'arm', variant: 7 } }, 'layers[2].platform.variant: must be a string'],
    ['platform os.features string', { ...layer, platform: { os: 'linux', architecture: 'amd64', 'os.features': 'a' } }, 'layers[2].platform.os.features: must be an array'],
    ['data not base64', { ...emptyDescriptor, data: 'e30' }, 'layers[2].data: must be standard padded base64'],
    ['data of the wrong size', { ...emptyDescriptor, size: 3 }, 'layers[2].data: decodes to 2 bytes but the descriptor\'s size is 3'],
    ['data of other content', { ...emptyDescriptor, data: 'W10=' }, 'layers[2].data: decodes to content with digest sha256:'],
  ])('rejects %s, naming the field', (_name, value, message) => {
    const err = thrown(() => validateDescriptor(value, 'layers[2]'));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toContain(message);
  });

  it('keeps the digest parser\'s reason as the cause', () => {
    const err = thrown(() => validateDescriptor({ ...layer, digest: 'sha256:xyz' }, 'manifest sha256:abc: layers[2]'));
    expect(err.message).toBe('manifest sha256:abc: layers[2].digest: invalid digest "sha256:xyz"');
    expect(err.cause).toBeInstanceOf(KilnError);
  });

  it('raises the code the caller asks for', () => {
    expect(thrown(() => validateDescriptor({ ...layer, size: -1 }, 'index.json: manifests[0]', 'LAYOUT_INVALID')).code).toBe('LAYOUT_INVALID');
  });

  it('shortens long offending values', () => {
    const err = thrown(() => validateDescriptor({ ...layer, mediaType: 'x'.repeat(500) }, 'd'));
    expect(err.message.length).toBeLessThan(200);
  });
});

describe('validatePlatform', () => {
  it('accepts os and architecture with optional fields', () => {
    const p = { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1', 'os.features': ['win32k'] };
    expect(validatePlatform(p, 'platform')).toBe(p);
  });

  it('rejects an empty architecture', () => {
    expect(thrown(() => validatePlatform({ os: 'linux', architecture: '' }, 'p')).message).toContain('p.architecture: required non-empty string');
  });
});

describe('field helpers', () => {
  it.each([
    ['application/vnd.oci.image.manifest.v1+json', true],
    ['text/plain', true],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', true],
    ['application/json; charset=utf-8', false],
    ['/json', false],
    ['application/', false],
    [`a/${'b'.repeat(128)}`, false],
  ])('isMediaType(%s) is %s', (value, ok) => {
    expect(isMediaType(value)).toBe(ok);
  });

  it('validateAnnotations and validateStringArray name the entry', () => {
    expect(thrown(() => validateAnnotations({ k: null }, 'annotations', 'VALIDATION')).message).toBe('annotations["k"]: must be a string, got null');
    expect(thrown(() => validateStringArray(['a', {}], 'Env')).message).toBe('Env[1]: must be a string, got {}');
  });
});
