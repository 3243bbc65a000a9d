import { describe, expect, it } from 'vitest';
import type { Digest } from '../../oci/digest.js';
import { buildBundle, BUNDLE_MEDIA_TYPE, keyHint, verifyBundle } from '../../signer/bundle.js';
import { generateKeyPair, loadPublicKey, loadSigningKey } from '../../signer/keys.js';
import { buildPayload, parsePayload, payloadTimestamp } from '../../signer/payload.js';

const DIGEST = `sha256:${'c'.repeat(64)}` as Digest;

describe('simple-signing payload', () => {
  it('is written as Go encoding/json writes cosign’s struct: field order, sorted optional, HTML escapes', () => {
    const payload = buildPayload({ dockerReference: 'reg.example/app', manifestDigest: DIGEST, annotations: { z: 'a<b>&c', a: '1' }, tag: 'v1', timestamp: 1700000000.9 });
    expect(payload.toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"reg.example/app"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},` +
        '"optional":{"a":"1","tag":"v1","timestamp":1700000000,"z":"a\\u003cb\\u003e\\u0026c"}}',
    );
    expect(buildPayload({ dockerReference: 'r/x', manifestDigest: DIGEST }).toString()).toMatch(/"optional":null}$/);
  });

  it('parses back, and says why other documents are not payloads', () => {
    const parsed = parsePayload(buildPayload({ dockerReference: 'reg.example/app', manifestDigest: DIGEST, timestamp: 1700000000 }));
    expect(parsed.ok && parsed.payload.manifestDigest).toBe(DIGEST);
    expect(parsed.ok && payloadTimestamp(parsed.payload)?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(parsePayload(Buffer.from('nope'))).toEqual({ ok: false, reason: 'the payload is not JSON' });
    expect(parsePayload(Buffer.from('{"critical":{"type":"atomic container signature"}}'))).toMatchObject({ ok: false, reason: expect.stringMatching(/critical.type/) });
    expect(parsePayload(Buffer.from('{"critical":{"type":"cosign container image signature","identity":{"docker-reference":"a/b"},"image":{"docker-manifest-digest":"md5:x"}}}'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/is not a digest/),
    });
  });
});

describe('Sigstore bundle (local key, offline)', () => {
  it('is a v0.3 message-signature bundle naming the key by hint, verified by @sigstore/verify with that key only', async () => {
    const pair = await generateKeyPair({ passphrase: '' });
    const key = await loadSigningKey({ pem: pair.privateKeyPem, passphrase: '', name: 'k' });
    const payload = buildPayload({ dockerReference: 'reg.example/app', manifestDigest: DIGEST });
    const bundle = await buildBundle(key, payload);
    const doc = JSON.parse(bundle.toString()) as { mediaType: string; verificationMaterial: { publicKey: { hint: string }; tlogEntries?: unknown[] } };
    expect(doc.mediaType).toBe(BUNDLE_MEDIA_TYPE);
    expect(doc.verificationMaterial.publicKey.hint).toBe(keyHint(key.publicKey));
    expect(doc.verificationMaterial.tlogEntries ?? []).toEqual([]);
    const pub = loadPublicKey(pair.publicKeyPem, 'cosign.pub');
    expect(await verifyBundle(bundle, payload, [pub])).toEqual({ key: pub });
    const other = loadPublicKey((await generateKeyPair({ passphrase: '' })).publicKeyPem, 'other.pub');
    expect(await verifyBundle(bundle, payload, [other])).toMatchObject({ reason: expect.stringMatching(/does not verify with other\.pub/) });
    expect(await verifyBundle(bundle, Buffer.concat([payload, Buffer.from(' ')]), [pub])).toMatchObject({ reason: expect.stringMatching(/message digest/) });
  });
});
