import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEarlyKeyDecryption, takeEarlyKey } from '../../cli/early-key.js';
import { generateKeyPair, loadPublicKey, signBytes, verifyBytes } from '../../signer/keys.js';

// `kiln sign` starts decrypting its key before the CLI's modules load; the command takes that work only for the
// same file, content and passphrase it would have used itself.
describe('early key decryption for kiln sign', () => {
  let dir: string;
  let keyPath: string;
  let pem: string;
  let publicPem: string;
  const env = { KILN_PASSWORD: 'early pass' };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-early-key-'));
    keyPath = join(dir, 'cosign.key');
    const pair = await generateKeyPair({ passphrase: env.KILN_PASSWORD });
    pem = pair.privateKeyPem;
    publicPem = pair.publicKeyPem;
    writeFileSync(keyPath, pem, { mode: 0o600 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('decrypts the --key of a sign command line, handed out once, and the key signs', async () => {
    startEarlyKeyDecryption(['sign', '--key', keyPath, 'localhost:5000/app:1'], env);
    const task = takeEarlyKey(keyPath, pem, env.KILN_PASSWORD);
    expect(task).toBeDefined();
    const key = await task!;
    const data = Buffer.from('payload');
    expect(verifyBytes(loadPublicKey(publicPem, 'cosign.pub'), data, signBytes(key, data))).toBe(true);
    expect(takeEarlyKey(keyPath, pem, env.KILN_PASSWORD)).toBeUndefined();
  });

  it('reads --key=FILE and the last --key, as commander does', () => {
    startEarlyKeyDecryption(['sign', '--key', join(dir, 'other.key'), `--key=${keyPath}`, 'r:1'], env);
    expect(takeEarlyKey(keyPath, pem, env.KILN_PASSWORD)).toBeDefined();
  });

  it('is not used for another file, another content or another passphrase', () => {
    startEarlyKeyDecryption(['sign', '--key', keyPath, 'r:1'], env);
    expect(takeEarlyKey(join(dir, 'elsewhere.key'), pem, env.KILN_PASSWORD)).toBeUndefined();
    expect(takeEarlyKey(keyPath, `${pem}\n`, env.KILN_PASSWORD)).toBeUndefined();
    expect(takeEarlyKey(keyPath, pem, 'another pass')).toBeUndefined();
  });

  it('starts nothing for other commands, without a passphrase in the environment, or for a missing file', () => {
    startEarlyKeyDecryption(['verify', '--key', keyPath, 'r:1'], env);
    expect(takeEarlyKey(keyPath, pem, env.KILN_PASSWORD)).toBeUndefined();
    startEarlyKeyDecryption(['sign', '--key', keyPath, 'r:1'], {});
    expect(takeEarlyKey(keyPath, pem, env.KILN_PASSWORD)).toBeUndefined();
    startEarlyKeyDecryption(['sign', '--key', join(dir, 'missing.key'), 'r:1'], env);
    expect(takeEarlyKey(join(dir, 'missing.key'), pem, env.KILN_PASSWORD)).toBeUndefined();
    startEarlyKeyDecryption(['sign', 'r:1', '--', '--key', keyPath], env);
    expect(takeEarlyKey(keyPath, pem, env.KILN_PASSWORD)).toBeUndefined();
  });

  it('leaves a wrong passphrase to the command: the early promise rejects with the same error, never unhandled', async () => {
    startEarlyKeyDecryption(['sign', '--key', keyPath, 'r:1'], { COSIGN_PASSWORD: 'wrong' });
    const task = takeEarlyKey(keyPath, pem, 'wrong');
    expect(task).toBeDefined();
    await expect(task!).rejects.toMatchObject({ code: 'PASSPHRASE_INVALID' });
  });
});
