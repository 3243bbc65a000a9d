import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, loadConfig, splitAddr } from '../../registry/config.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:5000 and ./kiln-data', async () => {
    expect(await loadConfig()).toEqual({ config: DEFAULT_CONFIG, warnings: [] });
  });

  it('reads CNCF Distribution keys; environment beats the file, flags beat both', async () => {
    const path = await file(
      'full.yml',
      'version: 0.1\nlog:\n  level: debug\nhttp:\n  addr: 127.0.0.1:6000\nstorage:\n  filesystem:\n    rootdirectory: /srv/registry\n  maintenance:\n    uploadpurging:\n      age: 2h30m\n      interval: 10m\n',
    );
    const fromFile = await loadConfig({ file: path });
    expect(fromFile.config).toEqual({ ...DEFAULT_CONFIG, addr: '127.0.0.1:6000', data: '/srv/registry', logLevel: 'debug', uploadMaxAgeMs: 9_000_000, uploadPurgeIntervalMs: 600_000 });
    const env = { REGISTRY_HTTP_ADDR: '127.0.0.1:7000', REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: '/env/data', REGISTRY_LOG_LEVEL: 'warn', REGISTRY_AUTH_FILE: '/home/u/auth.json' };
    const fromEnv = await loadConfig({ file: path, env });
    expect(fromEnv.config).toMatchObject({ addr: '127.0.0.1:7000', data: '/env/data', logLevel: 'warn' });
    const fromFlags = await loadConfig({ file: path, env, flags: { addr: '[::1]:0', data: 'here' } });
    expect(fromFlags.config).toMatchObject({ addr: '[::1]:0', data: 'here', logLevel: 'warn' });
  });

  it('warns about unknown keys (a Distribution config.yml loads) and refuses TLS', async () => {
    const path = await file('distribution.yml', 'version: 0.1\nhttp:\n  addr: 127.0.0.1:5000\n  secret: s\n  headers:\n    X-Content-Type-Options: [nosniff]\nstorage:\n  delete:\n    enabled: true\n');
    const { warnings } = await loadConfig({ file: path });
    expect(warnings).toEqual([`${path}: unknown key http.secret (ignored)`, `${path}: unknown key http.headers.X-Content-Type-Options (ignored)`, `${path}: unknown key storage.delete.enabled (ignored)`]);
    const tls = await file('tls.yml', 'http:\n  tls:\n    certificate: /etc/cert.pem\n');
    await expect(loadConfig({ file: tls })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('http.tls.certificate') });
  });

  it('names the key and its source in validation errors', async () => {
    const path = await file('bad.yml', 'http:\n  addr: nowhere\n');
    await expect(loadConfig({ file: path })).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining(`${path}: http.addr`) });
    await expect(loadConfig({ env: { REGISTRY_LOG_LEVEL: 'loud' } })).rejects.toThrow(/REGISTRY_LOG_LEVEL/);
    await expect(loadConfig({ flags: { addr: '127.0.0.1:70000' } })).rejects.toThrow(/--addr: port must be 0-65535/);
    await expect(loadConfig({ flags: { data: '' } })).rejects.toThrow(/--data/);
    await expect(loadConfig({ file: await file('list.yml', '- a\n- b\n') })).rejects.toThrow(/mapping/);
    await expect(loadConfig({ file: await file('broken.yml', 'http: [\n') })).rejects.toThrow(/not valid YAML/);
    await expect(loadConfig({ file: join(dir, 'missing.yml') })).rejects.toThrow(/cannot read/);
  });

  it('splits addresses, IPv6 included', () => {
    expect(splitAddr('127.0.0.1:5000')).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(splitAddr('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(splitAddr(':5000')).toEqual({ host: '', port: 5000 });
  });
});
