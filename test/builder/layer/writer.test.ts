import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerEntry } from '../../../builder/layer/entry.js';
import { compareLayerPaths, writeLayer } from '../../../builder/layer/writer.js';
import { decompressStream } from '../../../oci/compression.js';
import { VerifyingStream, digestOf } from '../../../oci/digest.js';

let root: string;
let out: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'kiln-writer-test-'));
  out = join(root, 'out');
  await mkdir(out);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const PINNED_DIFF_ID = 'sha256:6ff172829ac3741f92ef3307cae9e95d2b66a53fbe33c246234da093c652124e';
const hasGo = spawnSync('go', ['version']).status === 0;
const meta = { mode: 0o644, uid: 0, gid: 0, mtime: 1_600_000_000 };

async function fileEntry(path: string, content: string | Buffer, extra: Partial<LayerEntry> = {}): Promise<LayerEntry> {
  const source = join(root, `src-${createHash('sha256').update(path).digest('hex').slice(0, 12)}`);
  await writeFile(source, content);
  return { ...meta, ...extra, type: 'file', path, source, size: Buffer.byteLength(content) } as LayerEntry;
}

interface Listed {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  uname: string;
  pax: Record<string, string> | null;
  data: Buffer;
}

async function listWithTarStream(blob: string): Promise<Listed[]> {
  const extract = tar.extract();
  Readable.from([gunzipSync(await readFile(blob))]).pipe(extract);
  const items: Listed[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const h = entry.header;
    items.push({
      name: h.name,
      type: h.type ?? 'file',
      mode: h.mode ?? -1,
      uid: h.uid ?? -1,
      gid: h.gid ?? -1,
      mtime: (h.mtime?.getTime() ?? -1) / 1000,
      linkname: h.linkname ?? null,
      uname: h.uname ?? '',
      pax: (h.pax as Record<string, string> | undefined) ?? null,
      data: Buffer.concat(chunks),
    });
  }
  return items;
}

/** Entries covering every header shape: ustar, prefix split, PAX path/linkpath/uid/xattrs, markers, hard links. */
async function formatCases(): Promise<LayerEntry[]> {
  const deep = Array.from({ length: 8 }, (_, i) => `dir-number-${i}`).join('/');
  return [
    { ...meta, type: 'directory', path: 'app', mode: 0o755, uid: 1000, gid: 1000 },
    await fileEntry('app/main.js', 'console.log("kiln")\n'),
    { ...meta, type: 'symlink', path: 'app/index.js', linkname: 'main.js' },
    { ...meta, type: 'symlink', path: 'app/far', linkname: `../${'t'.repeat(120)}` },
    { type: 'whiteout', path: 'app/old.js' },
    { type: 'opaque', path: 'app' },
    await fileEntry(`app/${'long-'.repeat(30)}name`, '', { xattrs: { 'user.k': Buffer.from([0, 1, 255]), 'security.capability': Buffer.from('01000002', 'hex') } }),
    await fileEntry(`${deep}/file.txt`, 'deep', { mode: 0o4755, mtime: 1_800_000_000 }),
    { ...meta, type: 'hardlink', path: `${deep}/link.txt`, linkname: `${deep}/file.txt` },
    await fileEntry('naïve ☕', 'utf8', { uid: 3_000_000, gid: 65534 }),
    { ...meta, type: 'directory', path: 'd'.repeat(120), mode: 0o700 },
    { ...meta, type: 'directory', path: 'répertoire', mode: 0o755 },
    await fileEntry(`${'x'.repeat(99)}/${'y'.repeat(120)}`, 'cut at a slash'),
  ];
}

function markerPath(e: LayerEntry): string {
  if (e.type === 'opaque') return `${e.path}/.wh..wh..opq`;
  if (e.type !== 'whiteout') return e.path;
  const slash = e.path.lastIndexOf('/');
  return `${e.path.slice(0, slash + 1)}.wh.${e.path.slice(slash + 1)}`;
}

describe('compareLayerPaths', () => {
  it('puts parents before children and compares components bytewise', () => {
    const paths = ['a.b', 'a/b', 'a', 'B', 'a/.wh..wh..opq', 'a/!x', 'é', 'z', 'a/b/c'];
    expect([...paths].sort(compareLayerPaths)).toEqual(['B', 'a', 'a/.wh..wh..opq', 'a/!x', 'a/b', 'a/b/c', 'a.b', 'z', 'é']);
  });
  it('orders astral characters by their UTF-8 bytes', () => {
    // U+1F600 (F0 9F 98 80) sorts after U+FFFD (EF BF BD) in UTF-8, though its UTF-16 surrogate is smaller.
    expect(compareLayerPaths('\u{1F600}', '\uFFFD')).toBeGreaterThan(0);
  });
});

describe('writeLayer', () => {
  it('gives the same digest for the same entries in any order, and a different one for other content', async () => {
    const entries: LayerEntry[] = [
      { ...meta, type: 'directory', path: 'etc', mode: 0o755 },
      await fileEntry('etc/hosts', '127.0.0.1 localhost\n'),
      { ...meta, type: 'symlink', path: 'etc/link', linkname: 'hosts' },
      { type: 'whiteout', path: 'etc/old' },
    ];
    const a = await writeLayer({ entries, epoch: 2_000_000_000, dir: out });
    const b = await writeLayer({ entries: [...entries].reverse(), epoch: 2_000_000_000, dir: out });
    expect(b.digest).toBe(a.digest);
    expect(b.diffId).toBe(a.diffId);
    expect(a.path).toBe(join(out, `${a.digest.slice('sha256:'.length)}.tar.gz`));
    expect((await stat(a.path)).size).toBe(a.size);
    expect(digestOf(await readFile(a.path))).toBe(a.digest);
    expect(digestOf(gunzipSync(await readFile(a.path)))).toBe(a.diffId);
    const c = await writeLayer({ entries: [...entries, await fileEntry('etc/extra', 'x')], epoch: 2_000_000_000, dir: out });
    expect(c.digest).not.toBe(a.digest);
    // Only the finished blobs are left: no temp files.
    expect((await readdir(out)).sort()).toEqual([a.path, c.path].map((p) => p.slice(out.length + 1)).sort());
  });

  it('writes the same tar bytes on every machine (pinned diffId)', async () => {
    const layer = await writeLayer({ entries: await formatCases(), epoch: 1_700_000_000, dir: out });
    // The uncompressed tar depends on nothing but the entries; a change here changes every image's diff_ids.
    expect(layer.diffId).toBe(PINNED_DIFF_ID);
  });

  it.skipIf(!hasGo)('writes the tar byte for byte as Go archive/tar does (FormatPAX, as containerd)', async () => {
    const entries = await formatCases();
    const layer = await writeLayer({ entries, epoch: 1_700_000_000, dir: out });
    const sorted = [...entries].sort((a, b) => compareLayerPaths(markerPath(a), markerPath(b)));
    const goHeaders = sorted.map((e) => {
      if (e.type === 'whiteout' || e.type === 'opaque') {
        return `{Typeflag: tar.TypeReg, Name: ${JSON.stringify(markerPath(e))}, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}`;
      }
      const flag = { file: 'TypeReg', directory: 'TypeDir', symlink: 'TypeSymlink', hardlink: 'TypeLink' }[e.type];
      const name = e.type === 'directory' ? `${e.path}/` : e.path;
      const link = 'linkname' in e ? `, Linkname: ${JSON.stringify(e.linkname)}` : '';
      const size = e.type === 'file' ? `, Size: ${e.size}` : '';
      const pax = e.xattrs
        ? `, PAXRecords: map[string]string{${Object.entries(e.xattrs).map(([k, v]) => `"SCHILY.xattr.${k}": string([]byte{${[...v].join(',')}})`).join(', ')}}`
        : '';
      return `{Typeflag: tar.${flag}, Name: ${JSON.stringify(name)}, Mode: ${e.mode}, Uid: ${e.uid}, Gid: ${e.gid}, ModTime: time.Unix(${Math.min(e.mtime, 1_700_000_000)}, 0), Format: tar.FormatPAX${link}${size}${pax}}`;
    });
    const sources = sorted.map((e) => (e.type === 'file' ? JSON.stringify(e.source) : '""'));
    const prog = join(root, 'main.go');
    await writeFile(
      prog,
      `package main
import ("archive/tar"; "os"; "time")
func main() {
  w := tar.NewWriter(os.Stdout)
  hs := []*tar.Header{\n${goHeaders.join(',\n')},\n}
  srcs := []string{${sources.join(', ')}}
  for i, h := range hs {
    if err := w.WriteHeader(h); err != nil { panic(err) }
    if h.Size > 0 { b, _ := os.ReadFile(srcs[i]); w.Write(b) }
  }
  if err := w.Close(); err != nil { panic(err) }
}
`,
    );
    const res = spawnSync('go', ['run', prog], { env: { ...process.env, GOCACHE: join(tmpdir(), 'kiln-go-cache') }, cwd: root, maxBuffer: 1 << 24 });
    expect(res.stderr.toString()).toBe('');
    const ours = gunzipSync(await readFile(layer.path));
    expect(ours.length).toBe(res.stdout.length);
    expect(ours.equals(res.stdout)).toBe(true);
  });

  it('writes sorted, owner-numeric, clamped headers that GNU tar lists in order', async () => {
    const entries: LayerEntry[] = [
      await fileEntry('usr/bin/tool', '#!/bin/sh\n', { mode: 0o4755, uid: 1000, gid: 1001, mtime: 2_100_000_000 }),
      { ...meta, type: 'directory', path: 'usr', mode: 0o755 },
      { ...meta, type: 'directory', path: 'usr/bin', mode: 0o755, mtime: 5 },
      { ...meta, type: 'hardlink', path: 'usr/bin/tool2', linkname: 'usr/bin/tool' },
      { type: 'opaque', path: 'usr' },
    ];
    const layer = await writeLayer({ entries, epoch: 1_700_000_000, dir: out });
    const listing = execFileSync('sh', ['-c', `gzip -dc '${layer.path}' | tar -tv --numeric-owner --full-time`]).toString();
    const lines = listing.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual([
      'usr/',
      'usr/.wh..wh..opq',
      'usr/bin/',
      'usr/bin/tool',
      'usr/bin/tool2 link to usr/bin/tool',
    ]);
    expect(lines[3]).toMatch(/^-rwsr-xr-x 1000\/1001 +10 2023-11-14 22:13:20 /);
    expect(lines[2]).toMatch(/^drwxr-xr-x 0\/0 +0 1970-01-01 00:00:05 /);
    // Markers as containerd ≥ 2.0 writes whiteouts: empty regular file, mode 0, root, mtime 0.
    expect(lines[1]).toMatch(/^---------- 0\/0 +0 1970-01-01 00:00:00 /);
    const items = await listWithTarStream(layer.path);
    expect(items.map((i) => [i.name, i.type, i.uname])).toEqual([
      ['usr/', 'directory', ''],
      ['usr/.wh..wh..opq', 'file', ''],
      ['usr/bin/', 'directory', ''],
      ['usr/bin/tool', 'file', ''],
      ['usr/bin/tool2', 'link', ''],
    ]);
    expect(items[3]?.data.toString()).toBe('#!/bin/sh\n');
    expect(items[3]?.mode).toBe(0o4755);
  });

  it('writes long names, non-ASCII names, long link targets and xattrs as PAX records', async () => {
    const longDir = Array.from({ length: 12 }, (_, i) => `directory-${i}`).join('/');
    const longName = `${'n'.repeat(120)}.txt`;
    const entries: LayerEntry[] = [
      await fileEntry(`${longDir}/file`, 'a'),
      await fileEntry(longName, 'b'),
      await fileEntry('café', 'c', { xattrs: { 'security.capability': Buffer.from('0100000200200000', 'hex'), 'user.k': Buffer.from('v') } }),
      { ...meta, type: 'symlink', path: 'far', linkname: `/${'t'.repeat(150)}` },
    ];
    const layer = await writeLayer({ entries, epoch: 1_700_000_000, dir: out });
    const items = await listWithTarStream(layer.path);
    const names = items.map((i) => i.name);
    expect(names).toContain(`${longDir}/file`);
    expect(names).toContain(longName);
    expect(names).toContain('café');
    expect(items.find((i) => i.name === 'far')?.linkname).toBe(`/${'t'.repeat(150)}`);
    const cafe = items.find((i) => i.name === 'café');
    expect(cafe?.pax?.['SCHILY.xattr.user.k']).toBe('v');
    expect(cafe?.pax?.['SCHILY.xattr.security.capability']).toBeDefined();
    // GNU tar agrees on the names and sees the xattrs.
    const listing = execFileSync('sh', ['-c', `gzip -dc '${layer.path}' | tar -t --xattrs --xattrs-include='*' -v`]).toString();
    expect(listing).toContain(longName);
    expect(listing).toContain(`${longDir}/file`);
  });

  it.skipIf(!hasGo)('is read by Go archive/tar and compress/gzip with the same names and xattr bytes', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    const entries: LayerEntry[] = [
      { ...meta, type: 'directory', path: 'bin', mode: 0o755 },
      await fileEntry('bin/ping', 'ELF', { mode: 0o755, xattrs: { 'security.capability': cap } }),
      { ...meta, type: 'hardlink', path: 'bin/ping6', linkname: 'bin/ping' },
      await fileEntry(`deep/${'x'.repeat(200)}`, 'y'),
      { type: 'whiteout', path: 'bin/gone' },
    ];
    const layer = await writeLayer({ entries, epoch: 1_700_000_000, dir: out });
    const prog = join(root, 'main.go');
    await writeFile(
      prog,
      `package main
import ("archive/tar";"compress/gzip";"fmt";"os";"encoding/hex")
func main() {
  f, _ := os.Open(os.Args[1]); z, err := gzip.NewReader(f); if err != nil { panic(err) }
  r := tar.NewReader(z)
  for { h, err := r.Next(); if err != nil { if err.Error() == "EOF" { return }; panic(err) }
    fmt.Printf("%c %s %o %d %d %s %s\\n", h.Typeflag, h.Name, h.Mode, h.Size, h.ModTime.Unix(), h.Linkname, hex.EncodeToString([]byte(h.PAXRecords["SCHILY.xattr.security.capability"]))) }
}
`,
    );
    const res = spawnSync('go', ['run', prog, layer.path], { env: { ...process.env, GOFLAGS: '-mod=mod', GOCACHE: join(tmpdir(), 'kiln-go-cache') }, cwd: root });
    expect(res.stderr.toString()).toBe('');
    expect(res.stdout.toString().trim().split('\n').map((l) => l.trimEnd())).toEqual([
      '5 bin/ 755 0 1600000000',
      '0 bin/.wh.gone 0 0 0',
      `0 bin/ping 755 3 1600000000  ${cap.toString('hex')}`,
      '1 bin/ping6 644 0 1600000000 bin/ping',
      `0 deep/${'x'.repeat(200)} 644 1 1600000000`,
    ]);
  });

  it('round-trips a 50 MB random file through many gzip members that gzip -dc and zlib read back', async () => {
    const big = randomBytes(50 * 1024 * 1024);
    const entries: LayerEntry[] = [await fileEntry('blob.bin', big), await fileEntry('small', 'tail')];
    const layer = await writeLayer({ entries, epoch: 1_700_000_000, dir: out });
    const raw = await readFile(layer.path);
    // Independent members: more than one gzip header, each with mtime 0 and OS 255.
    const headers: number[] = [];
    for (let i = raw.indexOf(Buffer.from([0x1f, 0x8b, 0x08])); i >= 0; i = raw.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), i + 1)) {
      if (raw.readUInt32LE(i + 4) === 0 && raw[i + 9] === 0xff) headers.push(i);
    }
    expect(headers.length).toBeGreaterThanOrEqual(50);
    const tarBytes = gunzipSync(raw);
    expect(digestOf(tarBytes)).toBe(layer.diffId);
    const viaGzip = createHash('sha256');
    for await (const c of Readable.from(execFileSync('gzip', ['-dc', layer.path], { maxBuffer: 128 * 1024 * 1024 }))) viaGzip.update(c as Buffer);
    expect(`sha256:${viaGzip.digest('hex')}`).toBe(layer.diffId);
    // The streaming gunzip the rest of kiln reads layers with goes across member boundaries too.
    const streamed = new VerifyingStream();
    await pipeline(createReadStream(layer.path), decompressStream('gzip'), streamed, new Writable({ write: (_c, _e, cb) => cb() }));
    expect(streamed.digest).toBe(layer.diffId);
    const items = await listWithTarStream(layer.path);
    expect(items.map((i) => i.name)).toEqual(['blob.bin', 'small']);
    expect(items[0]?.data.equals(big)).toBe(true);
    expect(items[1]?.data.toString()).toBe('tail');
  });

  it('streams the blob file (reads back with createReadStream) and refuses a file that changed size', async () => {
    const entry = await fileEntry('f', 'abc');
    if (entry.type !== 'file') throw new Error('unreachable');
    await expect(writeLayer({ entries: [{ ...entry, size: 10 }], epoch: 0, dir: out })).rejects.toMatchObject({ code: 'BUILD_FAILED' });
    expect(await readdir(out)).toEqual([]);
    const ok = await writeLayer({ entries: [entry], epoch: 0, dir: out });
    let n = 0;
    for await (const c of createReadStream(ok.path)) n += (c as Buffer).length;
    expect(n).toBe(ok.size);
  });

  it('reports the sha256 of every file it read, small (read ahead) and large (streamed), without changing the blob', async () => {
    const small = await fileEntry('a/small', 'small file');
    const empty = await fileEntry('a/empty', '');
    const large = await fileEntry('b/large', randomBytes(3 * 1024 * 1024 + 7));
    const entries = [small, empty, large, { ...meta, type: 'directory', path: 'a' } as LayerEntry];
    const contentDigests = new Map<string, string>();
    const withDigests = await writeLayer({ entries, epoch: 1_700_000_000, dir: out, contentDigests });
    const out2 = join(root, 'out2');
    await mkdir(out2);
    const plain = await writeLayer({ entries, epoch: 1_700_000_000, dir: out2 });
    expect(withDigests.digest).toBe(plain.digest);
    const sha = async (e: LayerEntry): Promise<string> => createHash('sha256').update(await readFile((e as { source: string }).source)).digest('hex');
    expect(Object.fromEntries(contentDigests)).toEqual({
      [(small as { source: string }).source]: await sha(small),
      [(empty as { source: string }).source]: await sha(empty),
      [(large as { source: string }).source]: await sha(large),
    });
  });

  it('refuses duplicates, non-canonical paths, reserved names and dangling hard links', async () => {
    const d = { ...meta, type: 'directory' as const };
    const cases: LayerEntry[][] = [
      [{ ...d, path: 'a' }, { ...d, path: 'a' }],
      [{ ...d, path: '/a' }],
      [{ ...d, path: 'a/../b' }],
      [{ ...d, path: 'a/.wh.b' }],
      [{ ...meta, type: 'hardlink', path: 'l', linkname: 'missing' }],
      [{ ...meta, type: 'hardlink', path: 'a', linkname: 'b' }, await fileEntry('b', 'x')],
      [{ ...d, path: 'a', mode: Number.NaN }],
      [{ ...d, path: 'a', uid: -1 }],
    ];
    for (const entries of cases) {
      await expect(writeLayer({ entries, epoch: 0, dir: out })).rejects.toMatchObject({ code: 'VALIDATION' });
    }
  });
});
