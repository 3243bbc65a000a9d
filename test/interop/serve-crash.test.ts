import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf } from '../../oci/digest.js';
import { openTarget } from '../../oci/transports.js';
import { type KilnRun, run, runKiln } from '../support/kiln.js';
import { requirePeer } from '../support/peers.js';
import { makeRandomImage, type RandomImage, writeImageToTarget } from '../support/random-image.js';
import { verifyRegistry } from '../support/registry-walk.js';
import { type ServeProcess, startServe } from '../support/serve.js';
import { startThrottleProxy, type ThrottleProxy } from '../support/throttle-proxy.js';

// kill -9 of `kiln serve` while real clients push, then restarts on the same data directory (issue 3, point 3).
// Fast pushes go straight to the server and finish before the kill; slow ones go through a throttling proxy so
// they are certainly mid-upload when it comes; a churn of small pushes runs at full speed until the kill, so it
// lands wherever it lands (blob commit, manifest PUT, tag write). Which pushes completed is read from exit codes.

const MB = 1 << 20;
/** Request rate of each throttled client: its image would take over 30 s, the kill comes after about one. */
const THROTTLE = MB / 2;
const CHURN_TAGS = 20;

interface Push {
  label: string;
  tool: 'kiln' | 'skopeo';
  repository: string;
  tag: string;
  image: RandomImage;
  /** `oci:DIR:tag` holding the image. */
  source: string;
  throttled: boolean;
  /** Exit status and output of the push that ran while the server was killed. */
  result?: KilnRun;
}

/** A hand-driven chunked upload (distribution-spec § Pushing a blob in chunks) that spans the crash. */
interface ManualUpload {
  path: string;
  blob: Buffer;
  /** Bytes acknowledged (202) before the kill. */
  acknowledged: number;
}

let work: string;
let data: string;
let server: ServeProcess;
const pushes: Push[] = [];
const churn: Push[] = [];
let resumable: ManualUpload;
let abandoned: ManualUpload;
/** What the PATCH that was streaming when the server died ended with. */
let cutPatch: unknown;

function push(p: Push, host: string): Promise<KilnRun> {
  const destination = `${host}/${p.repository}:${p.tag}`;
  if (p.tool === 'kiln') return runKiln(['copy', '--quiet', p.source, destination]);
  return run(requirePeer('skopeo', 'skopeo'), ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', p.source, `docker://${destination}`]);
}

async function layoutOf(name: string, images: Array<[RandomImage, string]>): Promise<string> {
  const dir = join(work, name);
  const target = await openTarget(`oci:${dir}`, { mode: 'write' });
  for (const [image, tag] of images) await writeImageToTarget(target, image, tag);
  await target.close();
  return dir;
}

async function planPush(label: string, tool: Push['tool'], throttled: boolean, layers: number, layerSize: number): Promise<Push> {
  // skopeo would gzip uncompressed layers on the way (a new manifest digest); Kiln copies them as they are.
  const image = await makeRandomImage({ layers, layerSize, compression: tool === 'skopeo' ? 'gzip' : 'none' });
  const dir = await layoutOf(label, [[image, 'v1']]);
  return { label, tool, repository: `crash/${label}`, tag: 'v1', image, source: `oci:${dir}:v1`, throttled };
}

/** Opens an upload session and sends `acknowledged` bytes of a fresh random blob as one chunk. */
async function startUpload(url: string, repository: string, size: number, acknowledged: number): Promise<ManualUpload> {
  const post = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  expect(post.status).toBe(202);
  const path = new URL(post.headers.get('location') ?? '', url).pathname;
  const blob = randomBytes(size);
  const range = await patch(url, path, blob.subarray(0, acknowledged), 0);
  expect(range).toBe(`0-${acknowledged - 1}`);
  return { path, blob, acknowledged };
}

async function patch(url: string, path: string, chunk: Buffer, start: number): Promise<string | null> {
  const res = await fetch(`${url}${path}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + chunk.length - 1}` },
    body: new Uint8Array(chunk),
  });
  expect(res.status).toBe(202);
  return res.headers.get('range');
}

function uploadFile(upload: ManualUpload): string {
  return join(data, 'uploads', upload.path.slice(upload.path.lastIndexOf('/') + 1));
}

async function fileSize(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => -1);
}

/** Polls `ready` until it returns undefined; otherwise it says what is still awaited. */
async function waitFor(ready: () => Promise<string | undefined>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = await ready();
    if (missing === undefined) return;
    if (Date.now() > deadline) throw new Error(`crash scenario never reached its kill point: still waiting for ${missing}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  requirePeer('skopeo', 'skopeo');
  work = await mkdtemp(join(tmpdir(), 'kiln-serve-crash-'));
  data = join(work, 'data');
  pushes.push(
    await planPush('fast-kiln-0', 'kiln', false, 2, 5 * MB),
    await planPush('fast-kiln-1', 'kiln', false, 1, 12 * MB),
    await planPush('fast-skopeo', 'skopeo', false, 2, 4 * MB),
    await planPush('slow-kiln-0', 'kiln', true, 2, 8 * MB),
    await planPush('slow-kiln-1', 'kiln', true, 1, 20 * MB),
    await planPush('slow-skopeo', 'skopeo', true, 2, 8 * MB),
  );
  const small = await Promise.all(Array.from({ length: CHURN_TAGS }, () => makeRandomImage({ layers: 1, layerSize: 256 * 1024 })));
  const churnDir = await layoutOf('churn', small.map((image, i) => [image, `c${i}`]));
  small.forEach((image, i) => churn.push({ label: `churn-${i}`, tool: 'kiln', repository: 'crash/churn', tag: `c${i}`, image, source: `oci:${churnDir}:c${i}`, throttled: false }));

  server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
  resumable = await startUpload(server.url, 'crash/resume', 3 * MB, 1 * MB);
  abandoned = await startUpload(server.url, 'crash/abandoned', 256 * 1024, 100 * 1024);

  const proxies = new Map<Push, ThrottleProxy>();
  for (const p of pushes.filter((q) => q.throttled)) proxies.set(p, await startThrottleProxy(server.host, THROTTLE));
  let killed = false;
  const running = pushes.map(async (p) => {
    p.result = await push(p, proxies.get(p)?.host ?? server.host);
  });
  let churnStarted = 0;
  const churning = (async () => {
    for (const p of churn) {
      if (killed) break;
      churnStarted = Date.now();
      p.result = await push(p, server.host);
    }
  })();
  // The second chunk of the resumable upload is streaming (half sent) when the server dies.
  const secondChunk = resumable.blob.subarray(resumable.acknowledged);
  const req = request(`${server.url}${resumable.path}`, {
    method: 'PATCH',
    headers: {
      'content-type': 'application/octet-stream',
      'content-length': String(secondChunk.length),
      'content-range': `${resumable.acknowledged}-${resumable.blob.length - 1}`,
    },
  });
  const patchEnded = new Promise<unknown>((resolve) => {
    req.on('response', (res) => resolve(`HTTP ${res.statusCode}`));
    req.on('error', resolve);
  });
  req.write(secondChunk.subarray(0, secondChunk.length / 2));

  let killedBy: number | null | undefined;
  try {
    await waitFor(async () => {
      const fast = pushes.filter((p) => !p.throttled && p.result === undefined);
      if (fast.length > 0) return `fast pushes ${fast.map((p) => p.label).join(', ')}`;
      const slow = [...proxies].filter(([, proxy]) => proxy.forwarded() < THROTTLE);
      if (slow.length > 0) return `a second's worth of bytes through the proxies of ${slow.map(([p]) => p.label).join(', ')}`;
      if ((await fileSize(uploadFile(resumable))) < resumable.acknowledged + 256 * 1024) return 'the half-sent chunk to reach the upload file';
      if (churn.filter((p) => p.result !== undefined).length < 2) return 'two churn pushes';
      // Past the CLI's start-up (~0.3 s of a ~0.5 s push): the kill likely lands among its requests.
      if (Date.now() - churnStarted < 300) return 'a churn push to be talking to the server';
      return undefined;
    }, 60_000);
  } finally {
    // Also when the wait failed: no client may be left pushing after the test.
    killedBy = await server.stop('SIGKILL');
    killed = true;
    await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
    cutPatch = await patchEnded;
    await Promise.all([...running, churning]);
  }
  expect(killedBy, 'kiln serve should die of SIGKILL').toBeNull();
  // Same data directory: the lock of the killed process must be taken over.
  server = await startServe(['--addr', '127.0.0.1:0', '--data', data]);
}, 120_000);

afterAll(async () => {
  if (server && server.child.exitCode === null) await server.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Pushes that exited 0 before the restart: each is a promise the registry made. */
function completed(): Push[] {
  return [...pushes, ...churn].filter((p) => p.result?.code === 0);
}

/** One line per push that ran: label, exit code and, for a failure, the client's last line (for assertion messages). */
function summary(): string {
  return [...pushes, ...churn]
    .filter((p) => p.result !== undefined)
    .map((p) => `${p.label}: exit ${p.result?.code}${p.result?.code === 0 ? '' : ` (${p.result?.stderr.trim().split('\n').pop() ?? ''})`}`)
    .join('\n');
}

/** Pushes that ran but did not finish (churn pushes never started are not among them). */
function interrupted(): Push[] {
  return [...pushes, ...churn].filter((p) => p.result !== undefined && p.result.code !== 0);
}

describe('kiln serve killed with -9 while clients push', () => {
  it('cut the throttled pushes and the streaming PATCH, after the direct pushes had finished', () => {
    for (const p of pushes.filter((q) => !q.throttled)) expect(p.result?.code, `${p.label}: ${p.result?.stderr}`).toBe(0);
    for (const p of pushes.filter((q) => q.throttled)) expect(p.result?.code, `${p.label} should have been cut:\n${summary()}`).not.toBe(0);
    expect(churn.filter((p) => p.result?.code === 0).length, summary()).toBeGreaterThanOrEqual(2);
    expect(cutPatch).toBeInstanceOf(Error);
    // kiln copy prints the digest it pushed.
    for (const p of completed().filter((q) => q.tool === 'kiln')) expect(p.result?.stdout.trim()).toBe(p.image.manifest.digest);
  });

  it('keeps every completed push intact: tag → same digest, manifest and blobs verify, `kiln copy` pulls it', async () => {
    const tags = await verifyRegistry(server.url);
    for (const p of completed()) expect(tags.get(`${p.repository}:${p.tag}`), p.label).toBe(p.image.manifest.digest);
    const pulls = await Promise.all(
      completed()
        .filter((p) => !p.label.startsWith('churn'))
        .map(async (p) => [p, await runKiln(['copy', '--quiet', `${server.host}/${p.repository}:${p.tag}`, `oci:${join(work, 'pulled', p.label)}:v1`])] as const),
    );
    for (const [p, pulled] of pulls) {
      expect(pulled.code, `${p.label}: ${pulled.stderr}`).toBe(0);
      expect(pulled.stdout.trim()).toBe(p.image.manifest.digest);
    }
  });

  it('has no tag pointing to a missing manifest or blob, in any repository', async () => {
    // verifyRegistry fails on any tag whose manifest or blob is missing or corrupt; a cut push may leave a tag
    // only if its manifest PUT committed (the kill came before the client read the 201).
    const tags = await verifyRegistry(server.url);
    for (const p of interrupted()) {
      const digest = tags.get(`${p.repository}:${p.tag}`);
      if (digest !== undefined) expect(digest, p.label).toBe(p.image.manifest.digest);
    }
  });

  it('resumes the chunked upload that was cut mid-PATCH from its last acknowledged offset', async () => {
    const { path, blob, acknowledged } = resumable;
    // Bytes of the cut PATCH reached the file, but were never acknowledged: the session does not count them.
    expect(await fileSize(uploadFile(resumable))).toBeGreaterThan(acknowledged);
    const status = await fetch(`${server.url}${path}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe(`0-${acknowledged - 1}`);
    expect(await patch(server.url, path, blob.subarray(acknowledged), acknowledged)).toBe(`0-${blob.length - 1}`);
    const done = await fetch(`${server.url}${path}?digest=${digestOf(blob)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const back = await fetch(`${server.url}/v2/crash/resume/blobs/${digestOf(blob)}`);
    // Digests, not toEqual: a deep compare of megabytes blocks the event loop for seconds.
    expect(digestOf(Buffer.from(await back.arrayBuffer()))).toBe(digestOf(blob));
    // The other session survived the restart too, untouched.
    const other = await fetch(`${server.url}${abandoned.path}`);
    expect(other.status).toBe(204);
    expect(other.headers.get('range')).toBe(`0-${abandoned.acknowledged - 1}`);
  });

  it('accepts every interrupted push again, and serves it back verified', async () => {
    const again = interrupted();
    expect(again.length).toBeGreaterThanOrEqual(3);
    const results = await Promise.all(again.map(async (p) => [p, await push(p, server.host)] as const));
    for (const [p, result] of results) expect(result.code, `${p.label}: ${result.stderr}`).toBe(0);
    const tags = await verifyRegistry(server.url);
    for (const p of again) expect(tags.get(`${p.repository}:${p.tag}`), p.label).toBe(p.image.manifest.digest);
    const pulled = await runKiln(['copy', '--quiet', `${server.host}/crash/slow-kiln-1:v1`, `oci:${join(work, 'pulled', 'again')}:v1`]);
    expect(pulled.code, pulled.stderr).toBe(0);
  });

  it('leaves no upload or temp file behind after a restart with uploadpurging.age 0', async () => {
    expect(await server.stop('SIGKILL')).toBeNull();
    // What a crash between creating a file and recording it leaves: files no session owns.
    await writeFile(join(data, 'uploads', randomUUID()), randomBytes(1000));
    await mkdir(join(data, 'tmp'), { recursive: true });
    await writeFile(join(data, 'tmp', `blob-${randomUUID()}`), randomBytes(1000));
    expect((await readdir(join(data, 'uploads'))).length).toBeGreaterThan(1);

    const config = join(work, 'purge-now.yml');
    await writeFile(
      config,
      ['http:', '  addr: 127.0.0.1:0', 'storage:', '  filesystem:', `    rootdirectory: ${data}`, '  maintenance:', '    uploadpurging:', '      age: 0s', ''].join('\n'),
    );
    server = await startServe(['--config', config]);
    expect(await readdir(join(data, 'uploads'))).toEqual([]);
    expect(await readdir(join(data, 'tmp'))).toEqual([]);
    const gone = await fetch(`${server.url}${abandoned.path}`);
    expect(gone.status).toBe(404);
    expect(((await gone.json()) as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('BLOB_UPLOAD_UNKNOWN');
    // The purge touched uploads only: every tag still verifies, and each is one the clients pushed.
    const tags = await verifyRegistry(server.url);
    for (const p of completed()) expect(tags.get(`${p.repository}:${p.tag}`), p.label).toBe(p.image.manifest.digest);
    const pushed = new Map([...pushes, ...churn].map((p) => [`${p.repository}:${p.tag}`, p.image.manifest.digest]));
    for (const [tag, digest] of tags) expect(digest, tag).toBe(pushed.get(tag));
    expect(await server.stop('SIGTERM')).toBe(0);
  });
});
