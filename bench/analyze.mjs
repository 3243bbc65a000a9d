// Analyze benchmark (issue: kiln analyze §7): a ~1 GiB, 10-layer image (gzip layers of many files, some
// overwritten and deleted later) in an OCI layout. Kiln's full analysis against the time `zcat` needs just to
// decompress every layer, in the same run; goal ≤ 1.3×, peak RSS < 300 MB.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { KILN, machineLine, median, requireBinary, timed, writeSection } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LAYERS = 10;
const LAYER_BYTES = 100 * 2 ** 20;
const FILES_PER_LAYER = 2000;

const tap = (fn) => new Transform({ transform(c, _e, cb) { fn(c); cb(null, c); } });

/** Compressible file contents (hex of random bytes, ~50 % after gzip), as real binaries and text roughly are. */
function contents(size) {
  return Buffer.from(randomBytes(Math.ceil(size / 2)).toString('hex').slice(0, size));
}

/** One gzip layer: FILES_PER_LAYER files summing to LAYER_BYTES; later layers rewrite and delete some earlier files. */
async function writeLayer(dir, index) {
  const tmp = join(dir, `layer-${index}.tmp`);
  const pack = tar.pack();
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let size = 0;
  const done = pipeline(pack, tap((c) => diff.update(c)), createGzip({ level: 1 }), tap((c) => { blob.update(c); size += c.length; }), createWriteStream(tmp));
  const add = (header, data = Buffer.alloc(0)) => new Promise((resolve, reject) => pack.entry(header, data, (err) => (err ? reject(err) : resolve())));
  await add({ name: `layer${index}/`, type: 'directory', mtime: new Date(0) });
  const each = Math.floor(LAYER_BYTES / FILES_PER_LAYER);
  for (let f = 0; f < FILES_PER_LAYER; f++) {
    // Every tenth file rewrites a file of the layer below: waste that dive and the overlay both see.
    const name = index > 0 && f % 10 === 0 ? `layer${index - 1}/file-${f}` : `layer${index}/file-${f}`;
    await add({ name, mtime: new Date(0), size: each }, contents(each));
  }
  if (index > 0) await add({ name: `layer${index - 1}/.wh.file-1`, mtime: new Date(0) });
  pack.finalize();
  await done;
  const hex = blob.digest('hex');
  renameSync(tmp, join(dir, 'blobs/sha256', hex));
  return { desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size }, diffId: `sha256:${diff.digest('hex')}` };
}

function putJson(dir, doc) {
  const bytes = Buffer.from(JSON.stringify(doc));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(dir, 'blobs/sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

async function makeImage(dir) {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const layers = [];
  for (let i = 0; i < LAYERS; i++) layers.push(await writeLayer(dir, i));
  const history = layers.map((_, i) => ({ created_by: `/bin/sh -c make layer ${i}` }));
  const config = putJson(dir, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history, config: {} });
  const manifest = putJson(dir, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layers.map((l) => l.desc) });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  return layers.map((l) => join(dir, 'blobs/sha256', l.desc.digest.slice('sha256:'.length)));
}

/** `npm run bench -- analyze`. */
export async function run() {
  requireBinary('zcat', 'gzip');
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-analyze-'));
  try {
    process.stderr.write(`bench analyze: writing a ${LAYERS}-layer image of ${(LAYERS * LAYER_BYTES) / 2 ** 20} MiB…\n`);
    const blobs = await makeImage(dir);
    const compressedMiB = blobs.reduce((sum, b) => sum + statSync(b).size, 0) / 2 ** 20;
    const zcat = [];
    const kiln = [];
    for (let round = 0; round < ROUNDS; round++) {
      const runZcat = async () => zcat.push(await timed('sh', ['-c', `zcat ${blobs.join(' ')} > /dev/null`]));
      const runKiln = async () => kiln.push(await timed(process.execPath, [KILN, 'analyze', `oci:${dir}:bench`, '--format', 'json'], { CI: 'false' }));
      if (round % 2 === 0) {
        await runZcat();
        await runKiln();
      } else {
        await runKiln();
        await runZcat();
      }
      process.stderr.write(`round ${round + 1}: zcat ${zcat.at(-1).seconds.toFixed(2)} s, kiln ${kiln.at(-1).seconds.toFixed(2)} s, ${kiln.at(-1).peakMiB.toFixed(0)} MiB\n`);
    }
    const z = median(zcat.map((r) => r.seconds));
    const k = median(kiln.map((r) => r.seconds));
    const rss = median(kiln.map((r) => r.peakMiB));
    const ratio = k / z;
    const date = new Date().toISOString().slice(0, 10);
    writeSection(
      'analyze',
      `## analyze — \`kiln analyze\` vs \`zcat\` of every layer (${date})

A ${LAYERS}-layer image of ${(LAYERS * LAYER_BYTES) / 2 ** 20} MiB of tar content (${LAYERS * FILES_PER_LAYER} files of ${Math.floor(LAYER_BYTES / FILES_PER_LAYER / 1024)} KiB, hex text, gzip level 1;
each layer rewrites a tenth of the files below and deletes one) in an OCI layout (${compressedMiB.toFixed(0)} MiB compressed). Kiln: the full
analysis (blob and diff_id digests checked, dive's numbers, overlay, suggestions; \`--format json\`; up to 4 layers
read at once, gunzip on libuv's threads). zcat: every layer decompressed to /dev/null in one process. ${ROUNDS} rounds, order alternated, medians.
Machine: ${machineLine()}.

| measure | Kiln | zcat | ratio | goal | |
|---|---|---|---|---|---|
| time | ${k.toFixed(2)} s | ${z.toFixed(2)} s | ${ratio.toFixed(2)} | ≤ 1.3 | ${ratio <= 1.3 ? 'met' : '**missed**'} |
| peak RSS | ${rss.toFixed(0)} MiB | | | < 300 MB (286 MiB) | ${rss < 286 ? 'met' : '**missed**'} |

Reproduce: \`npm run bench -- analyze\` (BENCH_ROUNDS=${ROUNDS}).`,
    );
    process.stderr.write(`bench analyze: kiln ${k.toFixed(2)} s vs zcat ${z.toFixed(2)} s (×${ratio.toFixed(2)}), peak ${rss.toFixed(0)} MiB\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
