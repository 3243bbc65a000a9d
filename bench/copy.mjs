// Copy benchmark (issue: foundation §6): a 3-layer ~200 MB image of random data in an OCI layout, copied to
// Debian's CNCF registry and back by Kiln and by skopeo in the same run; medians, ratios and peak RSS.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { KILN, clearSkopeoCache, machineLine, median, requireBinary, startDistribution, timed, writeSection } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LAYER_MB = [100, 60, 40];

function hashTap(hash) {
  return new Transform({ transform(c, _e, cb) { hash.update(c); cb(null, c); } });
}

/** Writes one gzip'd layer holding a single file of random bytes; returns its descriptor and diff_id. */
async function writeLayer(layoutDir, index, megabytes) {
  const tmp = join(layoutDir, `layer-${index}.tmp`);
  const pack = tar.pack();
  const diff = createHash('sha256');
  const blob = createHash('sha256');
  let size = 0;
  const done = pipeline(pack, hashTap(diff), createGzip({ level: 1 }), hashTap(blob), new Transform({ transform(c, _e, cb) { size += c.length; cb(null, c); } }), createWriteStream(tmp));
  const entry = pack.entry({ name: `data/layer-${index}.bin`, size: megabytes * 2 ** 20, mtime: new Date(0) });
  for (let i = 0; i < megabytes; i++) {
    if (!entry.write(randomBytes(2 ** 20))) await new Promise((r) => entry.once('drain', r));
  }
  entry.end();
  pack.finalize();
  await done;
  const hex = blob.digest('hex');
  renameSync(tmp, join(layoutDir, 'blobs/sha256', hex));
  return { desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size }, diffId: `sha256:${diff.digest('hex')}` };
}

function putJson(layoutDir, doc) {
  const bytes = Buffer.from(JSON.stringify(doc));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layoutDir, 'blobs/sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

/** Writes a random OCI layout tagged `bench` (one gzip layer per size in MiB); returns the compressed layer bytes. */
export async function makeImage(dir, layerMb = LAYER_MB) {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const layers = [];
  for (const [i, mb] of layerMb.entries()) layers.push(await writeLayer(dir, i, mb));
  const config = putJson(dir, { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, config: {} });
  const manifest = putJson(dir, { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers: layers.map((l) => l.desc) });
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  return layers.reduce((s, l) => s + l.desc.size, 0);
}

const tools = {
  kiln: {
    push: (src, host, repo) => ['node', [KILN, 'copy', '-q', `oci:${src}:bench`, `${host}/${repo}:bench`]],
    pull: (dst, host, repo) => ['node', [KILN, 'copy', '-q', `${host}/${repo}:bench`, `oci:${dst}:bench`]],
  },
  skopeo: {
    push: (src, host, repo) => ['skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${src}:bench`, `docker://${host}/${repo}:bench`]],
    pull: (dst, host, repo) => ['skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${host}/${repo}:bench`, `oci:${dst}:bench`]],
  },
};

export async function run() {
  requireBinary('skopeo', 'skopeo');
  const work = join(tmpdir(), `kiln-bench-copy-${process.pid}`);
  const src = join(work, 'src');
  process.stderr.write(`bench copy: writing a ${LAYER_MB.join('+')} MiB random 3-layer image to ${src}\n`);
  const bytes = await makeImage(src);
  const samples = { kiln: { push: [], pull: [], rss: [] }, skopeo: { push: [], pull: [], rss: [] } };
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate who goes first; a fresh registry per tool and round so nothing is already there.
      const order = round % 2 ? ['kiln', 'skopeo'] : ['skopeo', 'kiln'];
      for (const tool of order) {
        clearSkopeoCache();
        const registry = await startDistribution();
        const out = join(work, `out-${tool}-${round}`);
        try {
          const push = await timed(...tools[tool].push(src, registry.host, `bench/${tool}`));
          const pull = await timed(...tools[tool].pull(out, registry.host, `bench/${tool}`));
          samples[tool].push.push(push.seconds);
          samples[tool].pull.push(pull.seconds);
          samples[tool].rss.push(Math.max(push.peakMiB, pull.peakMiB));
          process.stderr.write(`round ${round} ${tool}: push ${push.seconds.toFixed(2)} s, pull ${pull.seconds.toFixed(2)} s, peak RSS ${Math.max(push.peakMiB, pull.peakMiB).toFixed(0)} MiB\n`);
        } finally {
          await registry.stop();
          rmSync(out, { recursive: true, force: true });
          rmSync(registry.dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const row = (op) => {
    const k = median(samples.kiln[op]);
    const s = median(samples.skopeo[op]);
    return `| ${op === 'push' ? 'oci layout → registry' : 'registry → oci layout'} | ${k.toFixed(2)} s | ${s.toFixed(2)} s | ${(k / s).toFixed(2)} |`;
  };
  const body = `## copy — Kiln vs skopeo (${new Date().toISOString().slice(0, 10)})

A 3-layer image of ${(bytes / 2 ** 20).toFixed(0)} MiB random data (gzip layers), OCI layout ↔ Debian's CNCF registry on loopback
(fresh registry per tool and round; skopeo's blob-info cache cleared). ${ROUNDS} rounds, medians, order alternated.
Machine: ${machineLine()}.

| copy | Kiln | skopeo | ratio Kiln/skopeo (≤ 1 is better) |
|---|---|---|---|
${row('push')}
${row('pull')}

Peak RSS (median of each round's max): Kiln ${median(samples.kiln.rss).toFixed(0)} MiB, skopeo ${median(samples.skopeo.rss).toFixed(0)} MiB (goal: Kiln < 150 MiB).
Reproduce: \`npm run bench -- copy\` (BENCH_ROUNDS=${ROUNDS}).`;
  writeSection('copy', body);
  process.stdout.write(`${body}\n`);
}
