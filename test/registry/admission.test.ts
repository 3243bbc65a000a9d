import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawManifest } from '../../oci/manifest.js';
import type { AdmissionHook } from '../../registry/context.js';
import { RegistryError } from '../../registry/errors.js';
import { errorCode, imageManifest, putManifest, startTestRegistry, type TestRegistry } from './helpers.js';

// createApp({ admit }) with a simple policy: no tag named `forbidden` is written, and manifests annotated
// `example.com/quarantined` are not served.

const QUARANTINE = 'example.com/quarantined';
const calls: Array<{ repository: string; tag: string | undefined; action: string | undefined }> = [];

const admit: AdmissionHook = async (manifest: RawManifest, repository, tag, context) => {
  calls.push({ repository, tag, action: context?.action });
  if (context?.action === 'push' && tag === 'forbidden') throw new RegistryError('DENIED', `tag "forbidden" is refused by the admission policy of ${repository}`);
  if (context?.action === 'pull' && manifest.parsed.annotations?.[QUARANTINE] === 'true') {
    throw new RegistryError('DENIED', `manifest ${manifest.digest} is quarantined`);
  }
};

let registry: TestRegistry;
beforeAll(async () => {
  registry = await startTestRegistry({ deps: { admit } });
});
afterAll(() => registry?.stop({ removeDir: true }));

describe('the admission hook', () => {
  it('refuses a tag write with DENIED and its message, before anything is stored', async () => {
    const image = await imageManifest(registry.url, 'adm/app', { seed: 'forbidden' });
    const res = await putManifest(registry.url, 'adm/app', 'forbidden', image.bytes);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ errors: [{ code: 'DENIED', message: 'tag "forbidden" is refused by the admission policy of adm/app' }] });
    expect(await registry.metadata.getManifest('adm/app', image.digest)).toBeUndefined();
    expect((await fetch(`${registry.url}/v2/adm/app/manifests/forbidden`)).status).toBe(404);
    expect(calls.at(-1)).toEqual({ repository: 'adm/app', tag: 'forbidden', action: 'push' });
  });

  it('admits other tags and pushes by digest', async () => {
    const image = await imageManifest(registry.url, 'adm/app', { seed: 'fine' });
    expect((await putManifest(registry.url, 'adm/app', 'allowed', image.bytes)).status).toBe(201);
    expect((await putManifest(registry.url, 'adm/app', image.digest, image.bytes)).status).toBe(201);
    expect(calls.at(-1)).toEqual({ repository: 'adm/app', tag: undefined, action: 'push' });
    const get = await fetch(`${registry.url}/v2/adm/app/manifests/allowed`);
    expect(get.status).toBe(200);
    expect(calls.at(-1)).toEqual({ repository: 'adm/app', tag: 'allowed', action: 'pull' });
  });

  it('runs before a manifest is served (GET and HEAD, by tag or digest, cached or not) and may refuse it', async () => {
    const image = await imageManifest(registry.url, 'adm/held', { seed: 'held', annotations: { [QUARANTINE]: 'true' } });
    expect((await putManifest(registry.url, 'adm/held', 'v1', image.bytes)).status).toBe(201);
    for (const reference of ['v1', image.digest, 'v1']) {
      const get = await fetch(`${registry.url}/v2/adm/held/manifests/${reference}`);
      expect(get.status).toBe(403);
      expect(await errorCode(get)).toBe('DENIED');
      expect((await fetch(`${registry.url}/v2/adm/held/manifests/${reference}`, { method: 'HEAD' })).status).toBe(403);
    }
    expect(calls.at(-1)).toEqual({ repository: 'adm/held', tag: 'v1', action: 'pull' });
  });
});
