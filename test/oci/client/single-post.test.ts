import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../oci/client/registry-client.js';
import type { RequestEvent } from '../../../oci/client/transport.js';
import { digestOf } from '../../../oci/digest.js';
import { isKilnError } from '../../../oci/errors.js';
import { startDistribution, type RunningDistribution } from '../../support/distribution.js';
import { startServe, type ServeProcess } from '../../support/serve.js';

// Small blobs go up in one POST ?digest= (distribution-spec § single POST): Kiln's registry stores them at once
// (201); the CNCF registry opens a session instead (202), and the client finishes with a PUT. Large blobs
// always take POST + PUT.
let work: string;
let cncf: RunningDistribution;
let kiln: ServeProcess;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'kiln-single-post-'));
  cncf = await startDistribution();
  kiln = await startServe(['--addr', '127.0.0.1:0', '--data', join(work, 'data')]);
});
afterAll(async () => {
  await kiln?.stop();
  await cncf?.stop();
  await rm(work, { recursive: true, force: true });
});

async function push(host: string, bytes: Buffer, declaredSize = bytes.length): Promise<{ methods: string[]; stored: Buffer }> {
  const events: RequestEvent[] = [];
  const client = new RegistryClient({ registry: host, env: { HOME: '/nonexistent' }, onRequest: (e) => events.push(e) });
  const desc = { mediaType: 'application/octet-stream', digest: digestOf(bytes), size: declaredSize };
  await client.uploadBlob('single/post', desc, () => Readable.from([bytes]));
  const methods = events.filter((e) => !e.url.includes('/blobs/sha256:')).map((e) => `${e.method} ${new URL(e.url).searchParams.has('digest') ? 'digest' : '-'}`);
  const parts: Buffer[] = [];
  for await (const c of await client.getBlob('single/post', desc)) parts.push(c as Buffer);
  return { methods, stored: Buffer.concat(parts) };
}

describe('single-POST upload of small blobs', () => {
  it('is one POST on kiln serve', async () => {
    const bytes = randomBytes(1000);
    const { methods, stored } = await push(kiln.host, bytes);
    expect(methods).toEqual(['POST digest']);
    expect(stored.equals(bytes)).toBe(true);
  });

  it('falls back to the session the CNCF registry opens (POST, then PUT)', async () => {
    const bytes = randomBytes(1000);
    const { methods, stored } = await push(cncf.host, bytes);
    expect(methods).toEqual(['POST digest', 'PUT digest']);
    expect(stored.equals(bytes)).toBe(true);
  });

  it('is not used for blobs over 64 KiB', async () => {
    const bytes = randomBytes(100 * 1024);
    const { methods, stored } = await push(kiln.host, bytes);
    expect(methods).toEqual(['POST -', 'PUT digest']);
    expect(stored.equals(bytes)).toBe(true);
  });

  it('refuses data that is not the declared size before sending anything', async () => {
    const err = await push(kiln.host, randomBytes(100), 99).catch((e: unknown) => e);
    expect(isKilnError(err, 'SIZE_MISMATCH')).toBe(true);
  });
});
