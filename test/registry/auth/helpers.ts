import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import type { AuthFailure } from '../../../registry/auth/access-control.js';
import { loadConfig } from '../../../registry/config.js';
import type { AdmissionHook } from '../../../registry/context.js';
import { type RunningServer, startServer } from '../../../registry/server.js';

/** A real `startServer` registry on 127.0.0.1 with a YAML configuration and htpasswd users of its own. */
export interface SecureRegistry {
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  /** Temp dir holding `config.yml`, `htpasswd` and `data/`. */
  dir: string;
  data: string;
  htpasswd: string;
  /** Every auth failure the server reported, in order. */
  failures: AuthFailure[];
  server: RunningServer;
  close(): Promise<void>;
}

/** htpasswd text for `users` (bcrypt `$2b$`, cost 4 to keep tests fast). */
export function htpasswdText(users: Record<string, string>): string {
  return Object.entries(users)
    .map(([user, password]) => `${user}:${bcrypt.hashSync(password, 4)}\n`)
    .join('');
}

/**
 * Starts a registry whose configuration is `yaml` (without http/storage: those are set here);
 * `HTPASSWD` in it is replaced with the path of the htpasswd file written from `users`.
 */
export async function startSecureRegistry(options: { yaml: string; users?: Record<string, string>; admit?: AdmissionHook }): Promise<SecureRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'kiln-auth-'));
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, htpasswdText(options.users ?? {}));
  const data = join(dir, 'data');
  const file = join(dir, 'config.yml');
  await writeFile(file, `http: { addr: "127.0.0.1:0" }\nstorage: { filesystem: { rootdirectory: ${JSON.stringify(data)} } }\n${options.yaml.replaceAll('HTPASSWD', htpasswd)}`);
  const { config } = await loadConfig({ file });
  const failures: AuthFailure[] = [];
  const server = await startServer(config, { onAuthFailure: (f) => failures.push(f), admit: options.admit });
  return {
    url: server.url,
    host: server.url.slice('http://'.length),
    dir,
    data,
    htpasswd,
    failures,
    server,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** `Authorization: Basic …` */
export function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
}

/** `Authorization: Bearer …` */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** A token from `GET /token` for `scopes`, as `credentials` (Basic headers) or anonymously; throws unless 200. */
export async function fetchToken(url: string, service: string, scopes: string[], credentials: Record<string, string> = {}): Promise<string> {
  const query = new URLSearchParams({ service });
  for (const s of scopes) query.append('scope', s);
  const res = await fetch(`${url}/token?${query}`, { headers: credentials });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** A pushed test image: its manifest digest and bytes, and the digest of its one layer. */
export interface PushedImage {
  digest: string;
  bytes: Buffer;
  layer: string;
}

/** Pushes a one-layer image to `repository:tag` with `headers` (credentials); throws on any refusal. */
export async function pushImage(url: string, repository: string, tag: string, headers: Record<string, string> = {}, seed = `${repository}:${tag}`): Promise<PushedImage> {
  const put = async (data: Buffer): Promise<string> => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const res = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
    if (res.status !== 201) throw new Error(`blob push to ${repository}: ${res.status} ${await res.text()}`);
    return digest;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(layer), size: layer.length }],
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const res = await fetch(`${url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...headers, 'content-type': manifest.mediaType },
    body: new Uint8Array(bytes),
  });
  if (res.status !== 201) throw new Error(`manifest push to ${repository}:${tag}: ${res.status} ${await res.text()}`);
  return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes, layer: manifest.layers[0]?.digest ?? '' };
}
