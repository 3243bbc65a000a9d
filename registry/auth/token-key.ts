import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { isNotFound } from '../../oci/content/fs-blob-store.js';
import { errorMessage, KilnError } from '../../oci/errors.js';

/** The ES256 key pair that signs and checks registry tokens, with its JWK thumbprint as `kid`. */
export interface TokenKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
}

/** File name of the token signing key in the data directory. */
export const TOKEN_KEY_FILE = 'token-key.pem';

/**
 * Loads `<data>/token-key.pem` (PKCS#8 PEM, P-256), creating it with mode 0600 on first use. A key
 * readable by group or others, or not a P-256 key, is refused: whoever reads it can mint tokens.
 */
export async function loadTokenKey(data: string): Promise<TokenKey> {
  const path = join(data, TOKEN_KEY_FILE);
  let pem: string;
  try {
    const mode = (await stat(path)).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new KilnError('USAGE', `token signing key ${path} is readable by others (mode ${mode.toString(8)})`, { hint: `chmod 600 ${path}` });
    }
    pem = await readFile(path, 'utf8');
  } catch (err) {
    if (!isNotFound(err)) throw wrap(err, path);
    pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    try {
      await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    } catch (writeErr) {
      throw new KilnError('USAGE', `cannot create token signing key ${path}: ${errorMessage(writeErr)}`, { cause: writeErr });
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new KilnError('USAGE', `token signing key ${path} is not a PEM private key: ${errorMessage(err)}`, { cause: err, hint: `remove it to have a new one generated` });
  }
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KilnError('USAGE', `token signing key ${path} is not an ECDSA P-256 key (ES256)`, { hint: 'remove it to have a new one generated' });
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, kid: await calculateJwkThumbprint(await exportJWK(publicKey)) };
}

function wrap(err: unknown, path: string): unknown {
  if (err instanceof KilnError) return err;
  return new KilnError('USAGE', `cannot read token signing key ${path}: ${errorMessage(err)}`, { cause: err });
}
