import { describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { type CachedManifest, ManifestCache } from '../../registry/manifest-cache.js';

const entry = (text: string): CachedManifest => ({ digest: digestOf(text), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.from(text) });

describe('ManifestCache', () => {
  it('serves what was set and forgets a repository on invalidation only', () => {
    const cache = new ManifestCache();
    cache.set('a', 'latest', entry('a1'), cache.generation('a'));
    cache.set('b', 'latest', entry('b1'), cache.generation('b'));
    expect(cache.get('a', 'latest')?.digest).toBe(digestOf('a1'));
    cache.invalidate('a');
    expect(cache.get('a', 'latest')).toBeUndefined();
    expect(cache.get('b', 'latest')?.digest).toBe(digestOf('b1'));
  });

  it('drops an entry read before a write that invalidated the repository', () => {
    const cache = new ManifestCache();
    const before = cache.generation('a');
    cache.invalidate('a');
    cache.set('a', 'latest', entry('stale'), before);
    expect(cache.get('a', 'latest')).toBeUndefined();
  });

  it('evicts the least recently used entries beyond its limits', () => {
    const cache = new ManifestCache({ maxEntries: 2 });
    cache.set('r', 'one', entry('1'), 0);
    cache.set('r', 'two', entry('2'), 0);
    cache.get('r', 'one');
    cache.set('r', 'three', entry('3'), 0);
    expect(cache.get('r', 'two')).toBeUndefined();
    expect(cache.get('r', 'one')).toBeDefined();
    const small = new ManifestCache({ maxBytes: 160 });
    small.set('r', 'big', entry('x'.repeat(11)), 0);
    expect(small.get('r', 'big')).toBeUndefined();
  });
});
