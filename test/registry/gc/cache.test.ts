import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../oci/digest.js';
import { ManifestCache } from '../../../registry/manifest-cache.js';

const entry = (text: string) => ({ digest: digestOf(text), mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.from(text) });

describe('ManifestCache.clear (after garbage collection)', () => {
  it('forgets every entry, and a read that started before the clear cannot store a stale one', () => {
    const cache = new ManifestCache();
    cache.set('a', 'v1', entry('a'), cache.generation('a'));
    cache.set('b', 'v1', entry('b'), cache.generation('b'));
    const before = cache.generation('a');
    cache.clear();
    expect(cache.get('a', 'v1')).toBeUndefined();
    expect(cache.get('b', 'v1')).toBeUndefined();
    cache.set('a', 'v1', entry('stale'), before);
    expect(cache.get('a', 'v1')).toBeUndefined();
    cache.set('a', 'v1', entry('fresh'), cache.generation('a'));
    expect(cache.get('a', 'v1')?.bytes.toString()).toBe('fresh');
    // invalidate and clear compose: each moves the generation on.
    const g = cache.generation('a');
    cache.invalidate('a');
    expect(cache.generation('a')).not.toBe(g);
    cache.clear();
    expect(cache.generation('a')).toBe(g + 2);
  });
});
