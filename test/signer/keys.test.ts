import { createPublicKey, generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptWithPassphrase, encryptWithPassphrase } from '../../signer/key-encryption.js';
import { readKeyFile, writeKeyPair } from '../../signer/key-files.js';
import { generateKeyPair, loadPublicKey, loadSigningKey, publicKeyToPem, signBytes, verifyBytes } from '../../signer/keys.js';
import { rejection, thrown } from '../support/errors.js';
import { COSIGN_LEGACY_KEY, COSIGN_SIGSTORE_KEY, SECURESYSTEMSLIB_VECTORS } from './key-vectors.js';

/** A cosign key built by following the format description alone (no Kiln code): scrypt → secretbox → JSON → PEM. */
function keyBySpec(passphrase: string, label: string): { pem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = scryptSync(passphrase, salt, 32, { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  const sealed = nacl.secretbox(der, nonce, key);
  const json = JSON.stringify({
    kdf: { name: 'scrypt', params: { N: 32768, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  });
  const lines = Buffer.from(json).toString('base64').match(/.{1,64}/g) ?? [];
  const pem = `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
  return { pem, publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

describe('key encryption (go-securesystemslib encrypted format)', () => {
  it('decrypts the Go implementation’s vectors for every accepted scrypt parameter set', async () => {
    const { passphrase, plaintext } = SECURESYSTEMSLIB_VECTORS;
    expect((await decryptWithPassphrase(Buffer.from(SECURESYSTEMSLIB_VECTORS.raw), passphrase)).toString()).toBe(plaintext);
    for (const container of SECURESYSTEMSLIB_VECTORS.marshalled) {
      const json = (await decryptWithPassphrase(Buffer.from(container), passphrase)).toString();
      expect(Buffer.from(JSON.parse(json) as string, 'base64').toString()).toBe(plaintext);
    }
  });

  it('refuses parameters outside the accepted sets before deriving anything', async () => {
    const err = await rejection(decryptWithPassphrase(Buffer.from(SECURESYSTEMSLIB_VECTORS.unsupported), 'supersecret'));
    expect(err.code).toBe('KEY_INVALID');
    expect(err.message).toMatch(/unsupported scrypt parameters/);
  });

  it('writes N=32768 r=8 p=1 with a 32-byte salt and a 24-byte nonce, and round-trips', async () => {
    const container = await encryptWithPassphrase(Buffer.from('secret bytes'), 'pw');
    const doc = JSON.parse(container.toString()) as { kdf: { params: unknown; salt: string }; cipher: { nonce: string } };
    expect(Object.keys(JSON.parse(container.toString()) as object)).toEqual(['kdf', 'cipher', 'ciphertext']);
    expect(doc.kdf.params).toEqual({ N: 32768, r: 8, p: 1 });
    expect(Buffer.from(doc.kdf.salt, 'base64')).toHaveLength(32);
    expect(Buffer.from(doc.cipher.nonce, 'base64')).toHaveLength(24);
    expect((await decryptWithPassphrase(container, 'pw')).toString()).toBe('secret bytes');
  });

  it('a tampered ciphertext or a wrong passphrase is PASSPHRASE_INVALID', async () => {
    const container = JSON.parse((await encryptWithPassphrase(Buffer.from('x'), 'pw')).toString()) as { ciphertext: string };
    const wrong = await rejection(decryptWithPassphrase(Buffer.from(JSON.stringify(container)), 'PW'));
    expect(wrong.code).toBe('PASSPHRASE_INVALID');
    const bytes = Buffer.from(container.ciphertext, 'base64');
    bytes[0] = (bytes[0] ?? 0) ^ 1;
    const tampered = await rejection(decryptWithPassphrase(Buffer.from(JSON.stringify({ ...container, ciphertext: bytes.toString('base64') })), 'pw'));
    expect(tampered.code).toBe('PASSPHRASE_INVALID');
  });
});

describe('cosign keys', () => {
  it('round trip: generate, load with the passphrase, sign, verify with the public key', async () => {
    const pair = await generateKeyPair({ passphrase: 'correct horse' });
    expect(pair.privateKeyPem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
    expect(pair.privateKeyPem).not.toMatch(/BEGIN PRIVATE KEY|BEGIN EC PRIVATE KEY/);
    expect(pair.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const key = await loadSigningKey({ pem: pair.privateKeyPem, passphrase: 'correct horse', name: 'cosign.key' });
    const pub = loadPublicKey(pair.publicKeyPem, 'cosign.pub');
    expect(publicKeyToPem(key.publicKey.key)).toBe(pair.publicKeyPem);
    expect(key.publicKey.id).toBe(pub.id);
    const sig = signBytes(key, Buffer.from('payload'));
    expect(sig[0]).toBe(0x30); // ASN.1 SEQUENCE: DER, as cosign stores it
    expect(verifyBytes(pub, Buffer.from('payload'), sig)).toBe(true);
    expect(verifyBytes(pub, Buffer.from('payloaD'), sig)).toBe(false);
  });

  it('a wrong passphrase is a clear error', async () => {
    const pair = await generateKeyPair({ passphrase: 'right' });
    const err = await rejection(loadSigningKey({ pem: pair.privateKeyPem, passphrase: 'wrong', name: 'cosign.key' }));
    expect(err.code).toBe('PASSPHRASE_INVALID');
    expect(err.message).toBe('cosign.key: wrong passphrase (or the encrypted key was altered)');
  });

  it('loads a key encrypted by following the format description, under either label', async () => {
    for (const label of ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY']) {
      const spec = keyBySpec('pässword', label);
      const key = await loadSigningKey({ pem: spec.pem, passphrase: 'pässword', name: 'spec.key' });
      expect(publicKeyToPem(key.publicKey.key)).toBe(spec.publicKeyPem);
    }
  });

  it('loads keys cosign made: the legacy label with its published public key, and the current label', async () => {
    const legacy = await loadSigningKey({ pem: COSIGN_LEGACY_KEY.privateKeyPem, passphrase: COSIGN_LEGACY_KEY.passphrase, name: 'legacy.key' });
    expect(publicKeyToPem(legacy.publicKey.key)).toBe(COSIGN_LEGACY_KEY.publicKeyPem);
    const sig = signBytes(legacy, Buffer.from('hello'));
    expect(verifyBytes(loadPublicKey(COSIGN_LEGACY_KEY.publicKeyPem, 'legacy.pub'), Buffer.from('hello'), sig)).toBe(true);
    const current = await loadSigningKey({ pem: COSIGN_SIGSTORE_KEY.privateKeyPem, passphrase: COSIGN_SIGSTORE_KEY.passphrase, name: 'new.key' });
    expect(current.publicKey.key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(publicKeyToPem(current.publicKey.key)).toMatch(/^-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEMk2x2CCt/);
  });

  it('refuses an unencrypted private key, a public key given as private, and a private key given as public', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const plain = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect((await rejection(loadSigningKey({ pem: plain, passphrase: '', name: 'k' }))).code).toBe('KEY_INVALID');
    const pair = await generateKeyPair({ passphrase: '' });
    const asPrivate = await rejection(loadSigningKey({ pem: pair.publicKeyPem, passphrase: '', name: 'cosign.pub' }));
    expect(asPrivate.hint).toMatch(/public key/);
    expect(thrown(() => loadPublicKey(pair.privateKeyPem, 'cosign.key')).hint).toMatch(/never the private one/);
    expect(thrown(() => loadPublicKey('garbage', 'x.pub')).message).toMatch(/no PEM block/);
  });

  it('the public key PEM is what openssl derives from the private key', async () => {
    const pair = await generateKeyPair({ passphrase: 'p' });
    const key = await loadSigningKey({ pem: pair.privateKeyPem, passphrase: 'p', name: 'k' });
    expect(createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }).toString()).toBe(pair.publicKeyPem);
  });
});

describe('key files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes cosign.key 0600 and cosign.pub, and refuses to overwrite without force', async () => {
    const prefix = join(dir, 'cosign');
    const keys = await generateKeyPair({ passphrase: 'x' });
    const files = await writeKeyPair({ prefix, keys });
    expect((await stat(files.privateKeyPath)).mode & 0o777).toBe(0o600);
    expect(await readFile(files.publicKeyPath, 'utf8')).toBe(keys.publicKeyPem);
    const again = await rejection(writeKeyPair({ prefix, keys: await generateKeyPair({ passphrase: 'y' }) }));
    expect(again.code).toBe('USAGE');
    expect(await readFile(files.privateKeyPath, 'utf8')).toBe(keys.privateKeyPem);
    const replaced = await generateKeyPair({ passphrase: 'z' });
    await writeKeyPair({ prefix, keys: replaced, force: true });
    expect(await readFile(files.privateKeyPath, 'utf8')).toBe(replaced.privateKeyPem);
    expect((await stat(files.privateKeyPath)).mode & 0o777).toBe(0o600);
  });

  it('refuses when only the public half exists, writing nothing', async () => {
    const prefix = join(dir, 'half');
    await writeFile(`${prefix}.pub`, 'old');
    await rejection(writeKeyPair({ prefix, keys: await generateKeyPair({ passphrase: '' }) }));
    await expect(stat(`${prefix}.key`)).rejects.toThrow();
  });

  it('names a missing key file', async () => {
    const err = await rejection(readKeyFile(join(dir, 'nope.key')));
    expect(err.message).toMatch(/cannot read key .*nope\.key: no such file/);
  });
});
