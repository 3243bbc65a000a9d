import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, listTree, mountsUnder, readLayoutImage, tarNames, type BuildWorkspace } from '../../support/build-fixture.js';
import type { KilnRun } from '../../support/kiln.js';

// Random per run, so a hit can only come from this build. The Dockerfile only ever sees their hashes.
const FILE_SECRET = `file-secret-${randomBytes(16).toString('hex')}`;
const ENV_SECRET = `env-secret-${randomBytes(16).toString('hex')}`;
const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

const DOCKERFILE = `FROM busybox
RUN --mount=type=secret,id=tok test "$(sha256sum < /run/secrets/tok | cut -d' ' -f1)" = "${sha256(FILE_SECRET)}" && echo ok > /ok
RUN --mount=type=secret,id=envtok,target=/etc/app-token,required=true test "$(sha256sum < /etc/app-token | cut -d' ' -f1)" = "${sha256(ENV_SECRET)}" && echo ok > /ok-env
RUN --mount=type=secret,id=envtok,env=TOKEN test "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)" = "${sha256(ENV_SECRET)}" && echo ok > /ok-as-env
`;

let ws: BuildWorkspace;
let ctx: string;
let run: KilnRun;
let shmBefore: string[];
const out = (): string => join(ws.dir, 'out');

/** kiln-secrets-* dirs in /dev/shm (where env secrets are staged). */
async function shmSecretDirs(): Promise<string[]> {
  return (await readdir('/dev/shm').catch(() => [])).filter((n) => n.startsWith('kiln-secrets-'));
}

/** Every file under `dir` with its bytes, gzip members decompressed too (layer blobs are gzip). */
async function filesWithContent(dir: string): Promise<Array<{ path: string; bytes: Buffer }>> {
  const files: Array<{ path: string; bytes: Buffer }> = [];
  for (const rel of await listTree(dir)) {
    const path = join(dir, rel);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    const raw = await readFile(path);
    files.push({ path, bytes: raw });
    if (raw[0] === 0x1f && raw[1] === 0x8b) files.push({ path: `${path} (gunzipped)`, bytes: gunzipSync(raw) });
  }
  return files;
}

function holding(files: Array<{ path: string; bytes: Buffer }>, needle: string): string[] {
  return files.filter((f) => f.bytes.includes(needle)).map((f) => f.path);
}

beforeAll(async () => {
  ws = await buildWorkspace();
  ctx = await ws.context({ Dockerfile: DOCKERFILE });
  const secretFile = join(ws.dir, 'secret.txt');
  await writeFile(secretFile, FILE_SECRET, { mode: 0o600 });
  shmBefore = await shmSecretDirs();
  run = await ws.build(
    ['--secret', `id=tok,src=${secretFile}`, '--secret', 'id=envtok,env=KILN_TEST_TOKEN', '-t', 'secrets/app:1', '--metadata-file', join(ws.dir, 'meta.json'), '--output', `type=oci,dest=${out()},tar=false`, ctx],
    { env: { KILN_TEST_TOKEN: ENV_SECRET } },
  );
});
afterAll(async () => ws?.cleanup());

describe('kiln build --secret', () => {
  it('RUN --mount=type=secret sees the file and env secrets, as a file at the default or a given target and as an env var', async () => {
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    const image = await readLayoutImage(out());
    const names = image.layers.map(tarNames);
    expect(names[1]).toContain('ok');
    expect(names[2]).toContain('ok-env');
    expect(names[3]).toContain('ok-as-env');
  });

  it('no layer holds the secret files or their mount points', async () => {
    const image = await readLayoutImage(out());
    const names = image.layers.slice(1).flatMap(tarNames);
    expect(names.filter((n) => n.startsWith('run/secrets') || n === 'etc/app-token')).toEqual([]);
  });

  it('the secret values are in no layer, the config, the manifest or the history', async () => {
    const image = await readLayoutImage(out());
    for (const secret of [FILE_SECRET, ENV_SECRET]) {
      image.layers.forEach((layer, i) => expect(layer.includes(secret), `layer ${i}`).toBe(false));
      expect(image.configBytes.includes(secret)).toBe(false);
      expect(image.manifestBytes.includes(secret)).toBe(false);
      expect(JSON.stringify(image.config.history)).not.toContain(secret);
    }
    // The history does record the instruction (with the hashes), so the check above looked at real entries.
    expect(JSON.stringify(image.config.history)).toContain(sha256(FILE_SECRET));
  });

  it('nothing in the store (blobs, build cache index, stat caches) nor the outputs holds them', async () => {
    const cacheFiles = await filesWithContent(join(ws.dataDir, 'cache'));
    expect(cacheFiles.length).toBeGreaterThan(0);
    const everything = await filesWithContent(ws.dir);
    expect(everything.some((f) => f.path.startsWith(join(ws.dataDir, 'images', 'blobs')))).toBe(true);
    // The workspace holds the store, the OCI output and the metadata file; the secret's source file is the only allowed hit.
    const found = [...holding(everything, FILE_SECRET), ...holding(everything, ENV_SECRET)].filter((p) => p !== join(ws.dir, 'secret.txt'));
    expect(found).toEqual([]);
  });

  it('the build output (stdout, stderr) does not show them', () => {
    for (const secret of [FILE_SECRET, ENV_SECRET]) {
      expect(run.stdout).not.toContain(secret);
      expect(run.stderr).not.toContain(secret);
    }
  });

  it('a rebuild hits the cache and a failing secret RUN does not print the value either', async () => {
    const again = await ws.build(['--secret', `id=tok,src=${join(ws.dir, 'secret.txt')}`, '--secret', 'id=envtok,env=KILN_TEST_TOKEN', ctx], { env: { KILN_TEST_TOKEN: ENV_SECRET } });
    expect(again.code).toBe(0);
    expect(again.stderr.split('\n').filter((l) => /^#\d+ CACHED$/.test(l))).toHaveLength(3);

    const wrong = `wrong-${randomBytes(8).toString('hex')}`;
    const failed = await ws.build(['--secret', 'id=envtok,env=KILN_TEST_TOKEN', '--secret', `id=tok,src=${join(ws.dir, 'secret.txt')}`, '--no-cache', ctx], { env: { KILN_TEST_TOKEN: wrong } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).not.toContain(wrong);
    expect(failed.stderr).not.toContain(FILE_SECRET);
  });

  it('a required secret that was not given fails the build, naming it', async () => {
    const other = await ws.context({ Dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=missing,required=true true\n' });
    const r = await ws.build([other]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('missing');
  });

  it('leaves no staged secrets in /dev/shm, no mounts and no scratch directories', async () => {
    expect((await shmSecretDirs()).filter((d) => !shmBefore.includes(d))).toEqual([]);
    expect(await mountsUnder(ws.dir)).toEqual([]);
    expect(await listTree(join(ws.dataDir, 'tmp'))).toEqual([]);
  });
});
