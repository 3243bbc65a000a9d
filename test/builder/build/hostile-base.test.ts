import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWorkspace, listTree, mountsUnder, type BuildWorkspace } from '../../support/build-fixture.js';

/** One member of a hand-made tar: kiln's own writer refuses to make these, which is the point. */
interface RawEntry {
  name: string;
  type: '0' | '1' | '2' | '3' | '5';
  body?: string;
  linkname?: string;
  dev?: [number, number];
}

const octal = (n: number, width: number): string => n.toString(8).padStart(width - 1, '0') + '\0';

/** A ustar archive of `entries`, written byte by byte so nothing sanitises the names. */
function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(octal(e.type === '5' ? 0o755 : 0o644, 8), 100, 'ascii');
    h.write(octal(0, 8), 108, 'ascii');
    h.write(octal(0, 8), 116, 'ascii');
    h.write(octal(body.length, 12), 124, 'ascii');
    h.write(octal(0, 12), 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(e.type, 156, 'ascii');
    h.write(e.linkname ?? '', 157, 100, 'utf8');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    h.write(octal(e.dev?.[0] ?? 0, 8), 329, 'ascii');
    h.write(octal(e.dev?.[1] ?? 0, 8), 337, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148, 'ascii');
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let ws: BuildWorkspace;
let sentinel: string;
let counter = 0;
// Unique names, so finding one anywhere outside the store's tmp can only mean an escape.
const MARK = `kiln-escape-${randomBytes(6).toString('hex')}`;

/**
 * An OCI layout (tag `t`) of the busybox base plus one more gzip layer holding `tar`; with `corrupt`, the layer blob
 * stored under its digest is other bytes. Returns the layout dir and that layer's digest.
 */
async function hostileLayout(tar: Buffer, corrupt = false): Promise<{ dir: string; layer: string }> {
  const dir = join(ws.dir, `hostile-${++counter}`);
  await cp(ws.baseLayout, dir, { recursive: true });
  const blob = async (d: string): Promise<Buffer> => readFile(join(dir, 'blobs', ...d.split(':')));
  const put = async (b: Buffer, d = sha(b)): Promise<string> => {
    await writeFile(join(dir, 'blobs', ...d.split(':')), b);
    return d;
  };
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse((await blob(index.manifests[0]!.digest)).toString()) as {
    config: { digest: string; size: number };
    layers: { mediaType: string; digest: string; size: number }[];
  };
  const config = JSON.parse((await blob(manifest.config.digest)).toString()) as { rootfs: { diff_ids: string[] }; history?: unknown[] };
  const gz = gzipSync(tar);
  const layer = sha(gz);
  // Corrupt: one byte changed, same size, so only the digest can tell.
  const stored = Buffer.from(gz);
  if (corrupt) stored[stored.length >> 1] = stored[stored.length >> 1]! ^ 0xff;
  await put(stored, layer);
  config.rootfs.diff_ids.push(sha(tar));
  config.history?.push({ created: '1970-01-01T00:00:00Z', created_by: 'hostile layer' });
  const configBytes = Buffer.from(JSON.stringify(config));
  manifest.config = { ...manifest.config, digest: await put(configBytes), size: configBytes.length };
  manifest.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: gz.length });
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await put(manifestBytes);
  const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifestBytes.length, annotations: { 'org.opencontainers.image.ref.name': 't' } };
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [desc] }));
  return { dir, layer };
}

async function buildFrom(layout: string): Promise<{ code: number; stderr: string }> {
  const ctx = await ws.context({ Dockerfile: 'FROM hostile\nRUN true\n' });
  return ws.build(['--build-context', `hostile=oci-layout://${layout}:t`, ctx]);
}

/** Every path under `dir`, relative, never following symlinks (a hostile layer's symlink may point anywhere). */
async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
    const path = rel ? `${rel}/${d.name}` : d.name;
    out.push(path);
    if (d.isDirectory()) out.push(...(await walk(dir, path)));
  }
  return out;
}

/** Paths (under the workspace, the temp dir and /) whose name carries MARK. */
async function escapedFiles(): Promise<string[]> {
  const inWorkspace = (await walk(ws.dir)).filter((p) => p.includes(MARK) && !p.startsWith('hostile-'));
  const elsewhere = [...(await readdir(tmpdir())), ...(await readdir('/'))].filter((n) => n.includes(MARK));
  return [...inWorkspace, ...elsewhere];
}

beforeAll(async () => {
  ws = await buildWorkspace();
  // A directory beside the store's tmp/ (where rootfs dirs are made): a climb out of a rootfs would land near it.
  sentinel = join(ws.dataDir, 'sentinel');
  await mkdir(sentinel, { recursive: true });
  await mkdir(join(ws.dataDir, 'tmp'), { recursive: true });
  await writeFile(join(sentinel, 'passwd'), 'untouched\n');
});
afterAll(async () => ws?.cleanup());

const CASES: Array<{ title: string; entries: RawEntry[]; entry: string; why: RegExp }> = [
  { title: 'a "../" path', entries: [{ name: `../${MARK}`, type: '0', body: 'x' }], entry: `../${MARK}`, why: /\.\./ },
  { title: 'an absolute path', entries: [{ name: `/tmp/${MARK}`, type: '0', body: 'x' }], entry: `/tmp/${MARK}`, why: /absolute/ },
  {
    title: 'a symlink out of the root, then a file through it',
    entries: [
      { name: 'evil', type: '2', linkname: '../../..' },
      { name: `evil/${MARK}`, type: '0', body: 'x' },
    ],
    entry: `evil/${MARK}`,
    why: /root/,
  },
  {
    title: 'a hard link to a file outside the root',
    entries: [{ name: `etc/${MARK}`, type: '1', linkname: '../../etc/passwd' }],
    entry: `etc/${MARK}`,
    why: /\.\./,
  },
  {
    title: 'a hard link to the sentinel next to the store tmp',
    entries: [{ name: `${MARK}-link`, type: '1', linkname: '../../sentinel/passwd' }],
    entry: `${MARK}-link`,
    why: /\.\./,
  },
  { title: 'a character device', entries: [{ name: `dev/${MARK}`, type: '3', dev: [1, 3] }], entry: `dev/${MARK}`, why: /device/ },
];

describe('kiln build refuses hostile base layers', () => {
  for (const c of CASES) {
    it(`${c.title}: exit 1 naming the layer and the entry, nothing written outside, nothing left behind`, async () => {
      const { dir, layer } = await hostileLayout(rawTar(c.entries));
      const tmpBefore = await readdir(join(ws.dataDir, 'tmp'));
      const r = await buildFrom(dir);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(layer);
      expect(r.stderr).toContain(`"${c.entry}"`);
      expect(r.stderr).toMatch(c.why);
      expect(await escapedFiles()).toEqual([]);
      expect(await readdir(sentinel)).toEqual(['passwd']);
      expect(await readFile(join(sentinel, 'passwd'), 'utf8')).toBe('untouched\n');
      expect(await mountsUnder(ws.dir)).toEqual([]);
      // Compared with before, so one leak is reported by the case that caused it.
      expect((await readdir(join(ws.dataDir, 'tmp'))).filter((n) => !tmpBefore.includes(n))).toEqual([]);
    });
  }

  it('a layer whose bytes do not match the manifest digest: a digest mismatch, exit 1, nothing left behind', async () => {
    const { dir, layer } = await hostileLayout(rawTar([{ name: 'fine.txt', type: '0', body: 'fine' }]), true);
    const tmpBefore = await readdir(join(ws.dataDir, 'tmp'));
    const r = await buildFrom(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has digest sha256:[0-9a-f]{64}, expected sha256:/);
    expect(r.stderr).toContain(layer);
    expect(r.stderr).not.toContain('Unhandled');
    expect(await mountsUnder(ws.dir)).toEqual([]);
    expect((await readdir(join(ws.dataDir, 'tmp'))).filter((n) => !tmpBefore.includes(n))).toEqual([]);
    // The bad blob never made it into the store under the digest it does not have.
    expect(await listTree(join(ws.dataDir, 'images', 'blobs', 'sha256'))).not.toContain(layer.slice('sha256:'.length));
  });

  it('the same layout with an honest layer builds (the harness itself is sound)', async () => {
    const { dir } = await hostileLayout(rawTar([{ name: `${MARK}.txt`, type: '0', body: 'fine' }]));
    const r = await buildFrom(dir);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
  });
});
