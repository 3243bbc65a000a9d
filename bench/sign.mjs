// Sign benchmark (issue 6 §9): `kiln sign` and `kiln verify` of one image on a local `kiln serve`, and verify of
// 100 signed images. Goals: sign < 300 ms, verify < 300 ms (each a whole CLI run, as a user or CI job sees it),
// 100 verifies < 10 s. The 100 verifies are timed three ways: one `kiln verify` run given the 100 references (the
// goal's measure: cosign takes several images the same way), 100 sequential `kiln verify` processes (a shell loop),
// and one process looping over the images with the library (`verifyImage`). The 100 images are signed by one
// `kiln sign` run given the 100 references (key decrypted once).
import { randomBytes, scryptSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KILN, machineLine, median, startKiln, timed, writeSection } from './lib.mjs';

const dist = (path) => import(new URL(`../dist/${path}`, import.meta.url).href);
const { openTarget } = await dist('oci/transports.js');
const { digestOf } = await dist('oci/digest.js');
const { parseManifest } = await dist('oci/manifest.js');
const { verifyImage, assertVerified } = await dist('signer/verify-image.js');
const { loadPublicKey } = await dist('signer/keys.js');
const { readKeyFile } = await dist('signer/key-files.js');
const { MemoryTrustCache } = await dist('signer/trust-cache.js');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const MANY = 100;
const PASSWORD = 'bench passphrase';

/** Pushes a small random one-layer image (4 KiB layer) to `spec` under `tag`. */
async function pushSmallImage(spec, tag) {
  const target = await openTarget(spec, { mode: 'write' });
  try {
    const put = async (mediaType, bytes) => {
      const desc = { mediaType, digest: digestOf(bytes), size: bytes.length };
      await target.putBlob(desc, Readable.from([bytes]));
      return desc;
    };
    const layer = await put('application/vnd.oci.image.layer.v1.tar', randomBytes(4096));
    const config = await put('application/vnd.oci.image.config.v1+json', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] }, config: {} })));
    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    const manifest = parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config, layers: [layer] })), mediaType);
    await target.putManifest(manifest, tag);
    return manifest.digest;
  } finally {
    await target.close();
  }
}

const ms = (s) => `${(s * 1000).toFixed(0)} ms`;
const verdict = (ok) => (ok ? 'met' : '**missed**');

/** `npm run bench -- sign`. */
export async function run() {
  const work = mkdtempSync(join(tmpdir(), 'kiln-bench-sign-'));
  const registry = await startKiln();
  // Other work on the machine inflates CLI times (the figures are wall time): the highest 1-min load is reported.
  let peakLoad = loadavg()[0];
  const loadPoll = setInterval(() => (peakLoad = Math.max(peakLoad, loadavg()[0])), 1000);
  const env = { KILN_PASSWORD: PASSWORD, KILN_TRUST_DIR: join(work, 'trust'), CI: 'true', NO_COLOR: '1' };
  try {
    const keyPrefix = join(work, 'cosign');
    await timed(process.execPath, [KILN, 'keygen', '--output-key-prefix', keyPrefix], env);
    const keyArgs = (file) => ['--key', `${keyPrefix}.${file}`];

    // One image, ROUNDS times: each round signs a fresh image (so every image holds exactly one signature and one
    // bundle, as after a normal signing) and verifies it by tag, tag binding included. Plus node's start-up alone.
    process.stderr.write(`bench sign: ${ROUNDS} rounds of kiln sign + kiln verify on ${registry.host}…\n`);
    const startup = [];
    const sign = [];
    const verify = [];
    for (let round = 0; round < ROUNDS; round++) {
      const spec = `${registry.host}/bench/one${round}:1.0`;
      await pushSmallImage(spec, '1.0');
      startup.push((await timed(process.execPath, [KILN, '--version'], env)).seconds);
      sign.push((await timed(process.execPath, [KILN, 'sign', ...keyArgs('key'), spec], env)).seconds);
      verify.push((await timed(process.execPath, [KILN, 'verify', ...keyArgs('pub'), spec], env)).seconds);
      process.stderr.write(`round ${round + 1}: sign ${ms(sign.at(-1))}, verify ${ms(verify.at(-1))}\n`);
    }

    // 100 images, one repository each, signed by tag with one `kiln sign` run.
    process.stderr.write(`bench sign: pushing and signing ${MANY} images…\n`);
    const publicKey = loadPublicKey(await readKeyFile(`${keyPrefix}.pub`), 'cosign.pub');
    const specs = [];
    const signStart = process.hrtime.bigint();
    for (let i = 0; i < MANY; i++) {
      const spec = `${registry.host}/bench/many${i}:1.0`;
      await pushSmallImage(spec, '1.0');
      specs.push(spec);
    }
    const pushed = process.hrtime.bigint();
    const signManySeconds = (await timed(process.execPath, [KILN, 'sign', ...keyArgs('key'), ...specs], env)).seconds;
    process.stderr.write(`pushed in ${(Number(pushed - signStart) / 1e9).toFixed(2)} s, signed in ${signManySeconds.toFixed(2)} s\n`);

    // (a) one CLI run given the 100 references.
    const oneRunSeconds = (await timed(process.execPath, [KILN, 'verify', ...keyArgs('pub'), ...specs], env)).seconds;
    process.stderr.write(`kiln verify of ${MANY} references: ${oneRunSeconds.toFixed(2)} s\n`);

    // (b) 100 sequential CLI processes, as a shell loop would run them.
    const cliStart = process.hrtime.bigint();
    for (const spec of specs) await timed(process.execPath, [KILN, 'verify', ...keyArgs('pub'), spec], env);
    const cliSeconds = Number(process.hrtime.bigint() - cliStart) / 1e9;
    process.stderr.write(`${MANY} × kiln verify: ${cliSeconds.toFixed(2)} s\n`);

    // (c) one process, the library: verifyImage over a registry target per image, a trust cache in memory.
    const cache = new MemoryTrustCache();
    const libStart = process.hrtime.bigint();
    for (const spec of specs) {
      const target = await openTarget(spec, { mode: 'read' });
      try {
        assertVerified(await verifyImage({ target, keys: [publicKey], trustCache: cache }));
      } finally {
        await target.close();
      }
    }
    const libSeconds = Number(process.hrtime.bigint() - libStart) / 1e9;
    process.stderr.write(`${MANY} verifies in one process: ${libSeconds.toFixed(2)} s\n`);

    // The key's scrypt alone, as `kiln sign` pays it once per run (a floor of its own besides node's start-up).
    const scrypt = [];
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      scryptSync(PASSWORD, randomBytes(32), 32, { N: 32768, r: 8, p: 1, maxmem: 128 * 2 ** 20 });
      scrypt.push(Number(process.hrtime.bigint() - t) / 1e9);
    }
    const s = median(sign);
    const v = median(verify);
    const n = median(startup);
    const date = new Date().toISOString().slice(0, 10);
    writeSection(
      'sign',
      `## sign — \`kiln sign\` / \`kiln verify\` on a local \`kiln serve\` (${date})

Small one-layer images (4 KiB layer) on \`kiln serve\` over loopback, a cosign key pair from \`kiln keygen\`. Sign and
verify are whole CLI runs, as a user or CI job sees them: node start-up, key loading (signing decrypts the key:
scrypt N=32768, r=8, p=1), resolving the tag, writing the \`.sig\` signature, the Sigstore bundle referrer and the
signed tag state, or reading them back and checking every signature and the tag binding. ${ROUNDS} rounds, each on
a fresh image signed once; medians. \`kiln --version\` (node start-up alone) took ${ms(n)}.
For 100 images (one repository each, signed by tag by one \`kiln sign\` run given the 100 references), verifying
all of them is timed three ways: one \`kiln verify\` run given the 100 references (as \`cosign verify IMG1 IMG2 …\`),
100 sequential \`kiln verify\` processes (a shell loop), and one node process looping with the library (\`verifyImage\`).
Machine: ${machineLine()}.${peakLoad > cpus().length * 0.75 ? ` Machine was **busy**: 1-min load reached ${peakLoad.toFixed(2)} on ${cpus().length} CPUs during the run (other work), so these wall times are inflated.` : ''}

| measure | Kiln | goal | |
|---|---|---|---|
| \`kiln sign\` of one tag (median) | ${ms(s)} | < 300 ms | ${verdict(s < 0.3)} |
| \`kiln verify\` of one tag (median) | ${ms(v)} | < 300 ms | ${verdict(v < 0.3)} |
| verify 100 images: one \`kiln verify\` run, 100 references | ${oneRunSeconds.toFixed(2)} s | < 10 s | ${verdict(oneRunSeconds < 10)} |
| verify 100 images: 100 sequential \`kiln verify\` runs | ${cliSeconds.toFixed(2)} s | (< 10 s) | ${verdict(cliSeconds < 10)} |
| verify 100 images: one process, library loop | ${libSeconds.toFixed(2)} s | < 10 s | ${verdict(libSeconds < 10)} |

Where a CLI run's time goes: node's start-up (${ms(n)}) is paid by every run, so 100 processes cannot meet 10 s on
this machine, while one run given the 100 references checks them in ${oneRunSeconds.toFixed(2)} s and the library loop in
${libSeconds.toFixed(2)} s (${ms(libSeconds / MANY)} each: reading the
manifest, \`.sig\`, referrers, bundle and tag state over HTTP, and the ECDSA checks). Signing adds the key's scrypt
(${ms(median(scrypt))} here; keys as cosign writes them, N=32768), which starts on the thread pool before the CLI's modules load (cli/early-key.ts)
while the main thread loads them and @sigstore/sign's bundle builder and reads the image and its tag state; the writes (\`.sig\`, bundle,
tag state) go out concurrently, fresh blobs without an existence check first, the tag state's tag last. Verifying loads only @sigstore/verify. Node's start-up and
scrypt are the machine's speed: compare them with other runs before comparing sign times. A CI job verifying many images should pass them to one
\`kiln verify\`. Signing the 100 images with one \`kiln sign\` run took ${signManySeconds.toFixed(2)} s (key decrypted once).
Reproduce: \`npm run bench -- sign\` (BENCH_ROUNDS=${ROUNDS}).`,
    );
    process.stderr.write(`bench sign: sign ${ms(s)}, verify ${ms(v)}, ${MANY} verifies ${oneRunSeconds.toFixed(2)} s (one run) / ${cliSeconds.toFixed(2)} s (${MANY} runs) / ${libSeconds.toFixed(2)} s (library)\n`);
  } finally {
    clearInterval(loadPoll);
    await registry.stop();
    rmSync(registry.dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}
