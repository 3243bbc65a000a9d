import { randomBytes, scrypt as scryptCallback, type ScryptOptions } from 'node:crypto';
import { KilnError } from '../oci/errors.js';

// The passphrase-encrypted container of go-securesystemslib's `encrypted` package, which cosign and
// sigstore/sigstore's cryptoutils wrap around a PKCS#8 private key: JSON
// {"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}
// with every byte string in standard padded base64 (Go's encoding of []byte), scrypt deriving the
// 32-byte secretbox key from the UTF-8 passphrase.

/** scrypt cost parameters of the container. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** What Kiln writes: cosign's original ("legacy") parameters, which every cosign release reads. */
export const WRITE_PARAMS: ScryptParams = { N: 32768, r: 8, p: 1 };
/** What Kiln reads: the legacy, standard and OWASP sets go-securesystemslib accepts; anything else could be a DoS. */
export const READ_PARAMS: readonly ScryptParams[] = [WRITE_PARAMS, { N: 65536, r: 8, p: 1 }, { N: 131072, r: 8, p: 1 }];

const SALT_BYTES = 32;
/** NaCl secretbox sizes (XSalsa20-Poly1305): 32-byte key, 24-byte nonce. */
const KEY_BYTES = 32;
const NONCE_BYTES = 24;

/** tweetnacl, loaded only by commands that handle private keys (it would slow every kiln start-up). */
async function loadNacl(): Promise<typeof import('tweetnacl')> {
  return (await import('tweetnacl')).default;
}
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The secretbox key derived from `passphrase` (scrypt, 32 bytes). */
export function deriveKey(passphrase: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  // Node refuses scrypt when 128·N·r reaches maxmem; leave room above the parameters we accept.
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scryptCallback(Buffer.from(passphrase, 'utf8'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** Encrypts `plaintext` under `passphrase` into the container's JSON bytes (fresh salt and nonce). */
export async function encryptWithPassphrase(plaintext: Uint8Array, passphrase: string): Promise<Buffer> {
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const [key, nacl] = await Promise.all([deriveKey(passphrase, salt, WRITE_PARAMS), loadNacl()]);
  const ciphertext = nacl.secretbox(plaintext, nonce, key);
  key.fill(0);
  const doc = {
    kdf: { name: 'scrypt', params: { N: WRITE_PARAMS.N, r: WRITE_PARAMS.r, p: WRITE_PARAMS.p }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  };
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

/**
 * Decrypts the container's JSON bytes; a wrong passphrase (or tampered ciphertext) is PASSPHRASE_INVALID,
 * a malformed container or unaccepted parameters KEY_INVALID. `what` names the file in messages.
 */
export async function decryptWithPassphrase(container: Uint8Array, passphrase: string, what = 'private key'): Promise<Buffer> {
  const fail = (why: string): KilnError => new KilnError('KEY_INVALID', `${what}: ${why}`);
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(container).toString('utf8'));
  } catch (err) {
    throw new KilnError('KEY_INVALID', `${what}: the encrypted key is not JSON`, { cause: err });
  }
  const kdf = field(doc, 'kdf');
  const cipher = field(doc, 'cipher');
  if (field(kdf, 'name') !== 'scrypt') throw fail(`unsupported key derivation ${JSON.stringify(field(kdf, 'name'))} (expected "scrypt")`);
  if (field(cipher, 'name') !== 'nacl/secretbox') throw fail(`unsupported cipher ${JSON.stringify(field(cipher, 'name'))} (expected "nacl/secretbox")`);
  const raw = field(kdf, 'params');
  const params = READ_PARAMS.find((p) => field(raw, 'N') === p.N && field(raw, 'r') === p.r && field(raw, 'p') === p.p);
  if (!params) throw fail(`unsupported scrypt parameters ${JSON.stringify(raw)} (accepted: N=32768|65536|131072, r=8, p=1)`);
  const salt = base64Field(field(kdf, 'salt'), 'kdf.salt', fail);
  const nonce = base64Field(field(cipher, 'nonce'), 'cipher.nonce', fail);
  const ciphertext = base64Field(field(doc, 'ciphertext'), 'ciphertext', fail);
  if (nonce.length !== NONCE_BYTES) throw fail(`cipher.nonce is ${nonce.length} bytes, expected ${NONCE_BYTES}`);
  // tweetnacl loads on the main thread while scrypt runs on the thread pool.
  const [key, nacl] = await Promise.all([deriveKey(passphrase, salt, params), loadNacl()]);
  const plaintext = nacl.secretbox.open(ciphertext, nonce, key);
  key.fill(0);
  if (plaintext === null) {
    throw new KilnError('PASSPHRASE_INVALID', `${what}: wrong passphrase (or the encrypted key was altered)`, {
      hint: 'set COSIGN_PASSWORD or KILN_PASSWORD to the passphrase the key was created with',
    });
  }
  return Buffer.from(plaintext);
}

function field(doc: unknown, name: string): unknown {
  return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>)[name] : undefined;
}

function base64Field(value: unknown, name: string, fail: (why: string) => KilnError): Buffer {
  if (typeof value !== 'string' || !BASE64.test(value)) throw fail(`${name} must be a base64 string`);
  return Buffer.from(value, 'base64');
}
