import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_ANNOTATION, type CosignSignature } from '../../signer/attach.js';
import { buildPayload } from '../../signer/payload.js';
import { generateKeyPair, loadPublicKey } from '../../signer/keys.js';
import { verifyCosignSignatures, type SignaturePolicy } from '../../signer/verify.js';
import type { Digest } from '../../oci/digest.js';

// Real signatures made by cosign (test/fixtures/cosign/README.md), checked by the transport-independent verifier.
const DIR = join(import.meta.dirname, '..', 'fixtures', 'cosign');
const manifest = readFileSync(join(DIR, 'manifest.json'));
const key = loadPublicKey(readFileSync(join(DIR, 'cosign.pub'), 'utf8'), 'cosign.pub');
const REPOSITORY = '192.168.64.2:5000/cosign-signed-single-sample';

/** containers/image's on-disk form: "\0sigstore-json\n" then {mimeType, payload (base64), annotations}. */
function readSignature(name: string): CosignSignature {
  const raw = readFileSync(join(DIR, name));
  const prefix = Buffer.from('\0sigstore-json\n');
  expect(raw.subarray(0, prefix.length).equals(prefix)).toBe(true);
  const doc = JSON.parse(raw.subarray(prefix.length).toString()) as { payload: string; annotations: Record<string, string> };
  return { source: name, payload: Buffer.from(doc.payload, 'base64'), signature: doc.annotations[SIGNATURE_ANNOTATION] ?? '' };
}

const signatures = [readSignature('signature-1'), readSignature('signature-2')];
const policy: SignaturePolicy = { keys: [key], repository: REPOSITORY };

function flip(buf: Buffer, index: number): Buffer {
  const copy = Buffer.from(buf);
  copy[index] = (copy[index] ?? 0) ^ 0x01;
  return copy;
}

describe('cosign-made signature vectors', () => {
  it('both verify, with every check passing', async () => {
    for (const signature of signatures) {
      const [verdict] = await verifyCosignSignatures(manifest, [signature], policy);
      expect(verdict?.ok).toBe(true);
      expect(verdict?.checks.map((c) => [c.check, c.ok])).toEqual([
        ['signature', true],
        ['payload', true],
        ['digest', true],
        ['identity', true],
      ]);
      expect(verdict?.key?.id).toBe(key.id);
    }
  });

  it('Kiln serialises the same payload byte for byte', async () => {
    const payload = buildPayload({
      dockerReference: REPOSITORY,
      manifestDigest: 'sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00' as Digest,
    });
    expect(payload.equals(signatures[0]?.payload ?? Buffer.alloc(0))).toBe(true);
  });

  it('fails when any single byte of the manifest changes', async () => {
    const sig = signatures[0] as CosignSignature;
    for (let i = 0; i < manifest.length; i++) {
      const [verdict] = await verifyCosignSignatures(flip(manifest, i), [sig], policy);
      expect(verdict?.ok).toBe(false);
      expect(verdict?.checks.at(-1)?.check).toBe('digest');
    }
  });

  it('fails when any single byte of the payload changes', async () => {
    const sig = signatures[0] as CosignSignature;
    for (let i = 0; i < sig.payload.length; i++) {
      const [verdict] = await verifyCosignSignatures(manifest, [{ ...sig, payload: flip(sig.payload, i) }], policy);
      expect(verdict?.ok).toBe(false);
      expect(verdict?.checks).toEqual([expect.objectContaining({ check: 'signature', ok: false })]);
    }
  });

  it('fails when any single byte of the signature changes', async () => {
    const sig = signatures[1] as CosignSignature;
    const der = Buffer.from(sig.signature, 'base64');
    for (let i = 0; i < der.length; i++) {
      const [verdict] = await verifyCosignSignatures(manifest, [{ ...sig, signature: flip(der, i).toString('base64') }], policy);
      expect(verdict?.ok).toBe(false);
    }
  });

  it('fails with another key, for another repository, and past a maximum age (the payload has no timestamp)', async () => {
    const other = loadPublicKey((await generateKeyPair({ passphrase: '' })).publicKeyPem, 'other.pub');
    const [wrongKey] = await verifyCosignSignatures(manifest, signatures.slice(0, 1), { ...policy, keys: [other] });
    expect(wrongKey?.checks.at(-1)).toMatchObject({ check: 'signature', ok: false, detail: 'signature does not verify with other.pub' });
    const [wrongRepo] = await verifyCosignSignatures(manifest, signatures.slice(0, 1), { ...policy, repository: '192.168.64.2:5000/other' });
    expect(wrongRepo?.checks.at(-1)).toMatchObject({ check: 'identity', ok: false });
    const [tooOld] = await verifyCosignSignatures(manifest, signatures.slice(0, 1), { ...policy, maxAgeSeconds: 3600 });
    expect(tooOld?.checks.at(-1)).toMatchObject({ check: 'age', ok: false });
  });
});
