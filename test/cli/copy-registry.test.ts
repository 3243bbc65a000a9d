import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTarget } from '../../oci/transports.js';
import { startDistribution, type RunningDistribution } from '../support/distribution.js';
import { requirePeer } from '../support/peers.js';
import { runKiln, runPeer } from '../support/kiln.js';
import { makeImageIndex, makeRandomImage, writeImageToTarget } from '../support/random-image.js';

// `kiln copy/inspect/tags/login` against Debian's CNCF registry with htpasswd auth, skopeo as the judge.
const USER = 'alice';
const PASSWORD = 's3cret-pass';
let registry: RunningDistribution;
let work: string;
let dockerConfig: string;
let skopeo: string;

async function layoutWithImage(name: string, tag: string, opts: Parameters<typeof makeRandomImage>[0] = {}) {
  const dir = join(work, name);
  const target = await openTarget(`oci:${dir}:${tag}`, { mode: 'write' });
  const image = await makeRandomImage({ layers: 3, layerSize: 200_000, ...opts });
  await writeImageToTarget(target, image, tag);
  await target.close();
  return { dir, image };
}

const authEnv = () => ({ DOCKER_CONFIG: dockerConfig, REGISTRY_AUTH_FILE: '' , HOME: work, XDG_RUNTIME_DIR: join(work, 'run') });

beforeAll(async () => {
  skopeo = requirePeer('skopeo', 'skopeo');
  registry = await startDistribution({ htpasswd: { user: USER, password: PASSWORD } });
  work = await mkdtemp(join(tmpdir(), 'kiln-cli-'));
  dockerConfig = join(work, 'docker');
  await mkdir(dockerConfig);
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }));
});

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('kiln copy through a real registry', () => {
  it('keeps the manifest digest from layout → registry → layout, and skopeo reads what Kiln pushed', async () => {
    const { dir, image } = await layoutWithImage('src1', 'v1');
    const ref = `${registry.host}/team/app:v1`;
    const push = await runKiln(['copy', `oci:${dir}:v1`, ref], { env: authEnv() });
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout.trim()).toBe(image.manifest.digest);
    expect(push.stderr).toMatch(/copied {2}blob sha256:/);

    const back = join(work, 'back1');
    const pull = await runKiln(['copy', ref, `oci:${back}:v1`], { env: authEnv() });
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout.trim()).toBe(image.manifest.digest);
    const index = JSON.parse(await readFile(join(back, 'index.json'), 'utf8'));
    expect(index.manifests[0].digest).toBe(image.manifest.digest);

    const creds = `--creds=${USER}:${PASSWORD}`;
    const inspected = await runPeer(skopeo, ['inspect', '--raw', '--tls-verify=false', creds, `docker://${ref}`]);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(Buffer.from(inspected.stdout)).toEqual(image.manifest.bytes);
    const skopeoOut = join(work, 'skopeo-out');
    const copied = await runPeer(skopeo, ['copy', '--src-tls-verify=false', `--src-creds=${USER}:${PASSWORD}`, `docker://${ref}`, `oci:${skopeoOut}:v1`]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(skopeoOut, 'index.json'), 'utf8')).manifests[0].digest).toBe(image.manifest.digest);
  });

  it('reads what skopeo pushed (Docker schema2 conversion included)', async () => {
    const { dir } = await layoutWithImage('src2', 'v2');
    const ref = `${registry.host}/skopeo/pushed:v2`;
    const pushed = await runPeer(skopeo, ['copy', '--dest-tls-verify=false', `--dest-creds=${USER}:${PASSWORD}`, '--format', 'v2s2', `oci:${dir}:v2`, `docker://${ref}`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const raw = await runPeer(skopeo, ['inspect', '--raw', '--tls-verify=false', `--creds=${USER}:${PASSWORD}`, `docker://${ref}`]);
    const inspect = await runKiln(['inspect', '--raw', ref], { env: authEnv() });
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(inspect.stdout).toBe(raw.stdout);
    const json = await runKiln(['inspect', '--format', 'json', ref], { env: authEnv() });
    const summary = JSON.parse(json.stdout);
    expect(summary.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(summary.layers).toHaveLength(3);
    const out = join(work, 'from-skopeo');
    const pull = await runKiln(['copy', ref, `oci-archive:${out}.tar:v2`], { env: authEnv() });
    expect(pull.code, pull.stderr).toBe(0);
    // Bytes are kept exactly (Docker media types included), so the digest survives; skopeo 1.9 ignores
    // Docker-typed entries in a layout's index.json, so Kiln itself reads the archive back.
    const check = await runKiln(['inspect', '--raw', `oci-archive:${out}.tar:v2`]);
    expect(check.stdout, check.stderr).toBe(raw.stdout);
  });

  it('copies a whole index by default, one platform with --platform, and lists tags', async () => {
    const amd = await makeRandomImage({ layers: 1, platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await makeRandomImage({ layers: 1, platform: { os: 'linux', architecture: 'arm64' } });
    const index = makeImageIndex([
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const dir = join(work, 'multi');
    const t = await openTarget(`oci:${dir}:multi`, { mode: 'write' });
    await writeImageToTarget(t, amd);
    await writeImageToTarget(t, arm);
    await t.putManifest(index, 'multi');
    await t.close();
    const all = await runKiln(['copy', '--format', 'json', `oci:${dir}:multi`, `${registry.host}/multi/app:all`], { env: authEnv() });
    expect(all.code, all.stderr).toBe(0);
    expect(JSON.parse(all.stdout)).toMatchObject({ digest: index.digest, manifests: 3 });
    const one = await runKiln(['copy', '--platform', 'linux/arm64', `${registry.host}/multi/app:all`, `${registry.host}/multi/app:arm`], { env: authEnv() });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout.trim()).toBe(arm.manifest.digest);
    expect(one.stderr).toMatch(/mounted|exists/);
    const inspect = await runKiln(['inspect', '--format', 'json', `${registry.host}/multi/app:all`], { env: authEnv() });
    expect(JSON.parse(inspect.stdout).platforms.map((p: { platform: string }) => p.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const tags = await runKiln(['tags', `${registry.host}/multi/app`], { env: authEnv() });
    expect(tags.stdout.trim().split('\n').sort()).toEqual(['all', 'arm']);
  });

  it('does not send blobs the destination already has', async () => {
    const { dir } = await layoutWithImage('src3', 'v3');
    const first = await runKiln(['copy', `oci:${dir}:v3`, `${registry.host}/dedup/app:v3`], { env: authEnv() });
    expect(first.code, first.stderr).toBe(0);
    const again = await runKiln(['copy', `oci:${dir}:v3`, `${registry.host}/dedup/app:v3`], { env: authEnv() });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/copied/);
    expect(again.stderr.match(/exists +blob/g)).toHaveLength(4);
  });
});

describe('credentials and errors', () => {
  it('fails with one clear line without credentials and with a wrong password', async () => {
    const { dir } = await layoutWithImage('src4', 'v4');
    const none = await runKiln(['copy', `oci:${dir}:v4`, `${registry.host}/auth/app:v4`], { env: { ...authEnv(), DOCKER_CONFIG: join(work, 'nowhere') } });
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(new RegExp(`kiln: error: .*${registry.host.replace(/\./g, '\\.')}.*kiln login`));
    const badDir = join(work, 'bad-docker');
    await mkdir(badDir);
    await writeFile(join(badDir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from(`${USER}:wrong`).toString('base64') } } }));
    const bad = await runKiln(['tags', `${registry.host}/team/app`], { env: { ...authEnv(), DOCKER_CONFIG: badDir } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/kiln: error: .*(denied|rejected|invalid|failed).*alice/i);
    expect(bad.stderr).not.toContain('wrong');
  });

  it('kiln login checks and stores credentials; logout removes them', async () => {
    const authfile = join(work, 'login', 'auth.json');
    const wrong = await runKiln(['login', '-u', USER, '--password-stdin', '--authfile', authfile, registry.host], { input: 'nope\n', env: authEnv() });
    expect(wrong.code).toBe(1);
    await expect(readFile(authfile)).rejects.toThrow();
    const ok = await runKiln(['login', '-u', USER, '--password-stdin', '--authfile', authfile, registry.host], { input: `${PASSWORD}\n`, env: authEnv() });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('Login Succeeded');
    const stored = JSON.parse(await readFile(authfile, 'utf8'));
    expect(Buffer.from(stored.auths[registry.host].auth, 'base64').toString()).toBe(`${USER}:${PASSWORD}`);
    const tags = await runKiln(['tags', '--authfile', authfile, `${registry.host}/team/app`], { env: { ...authEnv(), DOCKER_CONFIG: join(work, 'nowhere') } });
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout.trim()).toBe('v1');
    const out = await runKiln(['logout', '--authfile', authfile, registry.host]);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(await readFile(authfile, 'utf8')).auths[registry.host]).toBeUndefined();
  });

  it('a corrupt source blob fails the copy and leaves nothing in the destination layout', async () => {
    const { dir, image } = await layoutWithImage('corrupt', 'v5');
    const layer = image.layers[1]!;
    const path = join(dir, 'blobs', 'sha256', layer.desc.digest.slice(7));
    const bytes = await readFile(path);
    const at = bytes.length - 5;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    await writeFile(path, bytes);
    const dest = join(work, 'dest-corrupt');
    const res = await runKiln(['copy', `oci:${dir}:v5`, `oci:${dest}:v5`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(layer.desc.digest);
    const blobs = await readdir(join(dest, 'blobs', 'sha256')).catch(() => [] as string[]);
    expect(blobs).not.toContain(layer.desc.digest.slice(7));
    const index = await readFile(join(dest, 'index.json'), 'utf8').catch(() => '{"manifests":[]}');
    expect(JSON.parse(index).manifests).toEqual([]);
  });

  it('reports malformed index.json, bad references and registry error bodies in one line', async () => {
    const broken = join(work, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(broken, 'index.json'), '{"schemaVersion":2,"manifests":[{"digest":"sha256:zz"}]}');
    const layout = await runKiln(['inspect', `oci:${broken}`]);
    expect(layout.code).toBe(1);
    expect(layout.stderr).toMatch(/index\.json/);
    const ref = await runKiln(['inspect', 'Bad//Ref']);
    expect(ref.code).toBe(1);
    expect(ref.stderr).toMatch(/invalid reference "Bad\/\/Ref"/);
    const missing = await runKiln(['inspect', `${registry.host}/team/app:nope`], { env: authEnv() });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/MANIFEST_UNKNOWN|not found|unknown/i);
    expect(missing.stderr).toContain('team/app');
    for (const r of [layout, ref, missing]) expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
