import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { errorMessage, KilnError } from '../oci/errors.js';
import { decryptWithPassphrase, encryptWithPassphrase } from './key-encryption.js';
import { pemDecode, pemEncode } from './pem.js';

/** PEM label cosign (sigstore/sigstore cryptoutils) writes for an encrypted private key. */
export const ENCRYPTED_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** The label older cosign releases wrote; still read. */
export const LEGACY_ENCRYPTED_KEY_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY';
const PUBLIC_KEY_LABEL = 'PUBLIC KEY';

/** A key pair as files hold it: the encrypted private key and the PKIX public key, both PEM. */
export interface KeyPairPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A private key ready to sign, with its public half. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: PublicKey;
}

/** A trusted public key: the key, its id (sha256 of the PKIX DER, hex) and a name for messages. */
export interface PublicKey {
  key: KeyObject;
  id: string;
  name: string;
  /** When the key may have signed (key-validity.ts); absent: always. */
  validity?: { from?: Date; until?: Date };
}

/** Generates an ECDSA P-256 key pair; the private key is written only encrypted under `passphrase`. */
export async function generateKeyPair(options: { passphrase: string }): Promise<KeyPairPem> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    return { privateKeyPem: await encryptPrivateKey(pkcs8, options.passphrase), publicKeyPem: publicKeyToPem(publicKey) };
  } finally {
    pkcs8.fill(0);
  }
}

/** Encrypts PKCS#8 DER bytes into cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM. */
export async function encryptPrivateKey(pkcs8Der: Uint8Array, passphrase: string): Promise<string> {
  return pemEncode(ENCRYPTED_KEY_LABEL, await encryptWithPassphrase(pkcs8Der, passphrase));
}

/**
 * Loads a cosign private key (either encrypted label) with `passphrase`; `name` (e.g. the file) is
 * used in messages. Unencrypted PEM is refused: a key file must never hold the key in clear.
 */
export async function loadSigningKey(options: { pem: string; passphrase: string; name: string }): Promise<SigningKey> {
  const { name } = options;
  const block = pemDecode(options.pem, name);
  if (block.label !== ENCRYPTED_KEY_LABEL && block.label !== LEGACY_ENCRYPTED_KEY_LABEL) {
    throw new KilnError('KEY_INVALID', `${name}: a "${block.label}" PEM block is not a cosign private key (expected "${ENCRYPTED_KEY_LABEL}")`, {
      hint: block.label === PUBLIC_KEY_LABEL ? 'this is the public key: sign with the private key (cosign.key)' : 'create one with kiln keygen',
    });
  }
  const der = await decryptWithPassphrase(block.bytes, options.passphrase, name);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw new KilnError('KEY_INVALID', `${name}: the decrypted key is not PKCS#8 (${errorMessage(err)})`, { cause: err });
  } finally {
    der.fill(0);
  }
  checkSigningKeyType(privateKey, name);
  return { privateKey, publicKey: publicKeyFrom(createPublicKey(privateKey), name) };
}

/** Parses a PKIX `PUBLIC KEY` PEM (cosign.pub) into a trusted key named `name`. */
export function loadPublicKey(pem: string, name: string): PublicKey {
  const block = pemDecode(pem, name);
  if (block.label !== PUBLIC_KEY_LABEL) {
    throw new KilnError('KEY_INVALID', `${name}: a "${block.label}" PEM block is not a public key (expected "${PUBLIC_KEY_LABEL}")`, {
      hint: block.label.includes('PRIVATE') ? 'verify with the public key (cosign.pub), never the private one' : undefined,
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.bytes, format: 'der', type: 'spki' });
  } catch (err) {
    throw new KilnError('KEY_INVALID', `${name}: not a valid PKIX public key (${errorMessage(err)})`, { cause: err });
  }
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'rsa' && type !== 'ed25519') {
    throw new KilnError('KEY_INVALID', `${name}: ${String(type)} keys are not supported (ECDSA, RSA or Ed25519)`);
  }
  return publicKeyFrom(key, name);
}

/** The public key as PKIX PEM, as cosign writes cosign.pub. */
export function publicKeyToPem(key: KeyObject): string {
  return pemEncode(PUBLIC_KEY_LABEL, key.export({ format: 'der', type: 'spki' }));
}

/** Signs `data` with SHA-256, returning the signature as cosign stores it (ASN.1 DER for ECDSA). */
export function signBytes(key: SigningKey, data: Uint8Array): Buffer {
  return sign('sha256', data, { key: key.privateKey, dsaEncoding: 'der' });
}

/** True when `signature` over `data` verifies under `key` (SHA-256; Ed25519 signs the data itself). */
export function verifyBytes(key: PublicKey, data: Uint8Array, signature: Uint8Array): boolean {
  const algorithm = key.key.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  try {
    return verify(algorithm, data, { key: key.key, dsaEncoding: 'der' }, signature);
  } catch {
    // OpenSSL throws on signatures it cannot even parse (bad DER): for a verifier that is simply "does not verify".
    return false;
  }
}

function publicKeyFrom(key: KeyObject, name: string): PublicKey {
  const der = key.export({ format: 'der', type: 'spki' });
  return { key, id: createHash('sha256').update(der).digest('hex'), name };
}

function checkSigningKeyType(key: KeyObject, name: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
    throw new KilnError('KEY_INVALID', `${name}: Kiln signs with ECDSA P-256 keys; this is ${key.asymmetricKeyType ?? 'unknown'}${curve ? ` ${curve}` : ''}`);
  }
}
