// Registry benchmark (issue 3 §6): `kiln serve` side by side with Debian's CNCF registry on loopback, in one run and
// with one client: skopeo push/pull of a 3-layer ~200 MB image, manifest GET by tag under wrk, peak RSS while 1 GB is pushed.
// BENCH_ROUNDS (default 5) sets the push/pull rounds; BENCH_CPU_PROF=DIR runs `kiln serve` under node --cpu-prof.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeImage } from './copy.mjs';
import { clearSkopeoCache, machineLine, median, requireBinary, startDistribution, startKiln, timed, vmHwmMiB, writeSection } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const BIG_LAYER_MB = [200, 200, 200, 200, 200];
const WRK = ['-c16', '-d10s', '-t2'];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ACCEPT = `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json`;
const REGISTRIES = { kiln: { label: 'Kiln', start: () => startKiln({ profileDir: process.env.BENCH_CPU_PROF }) }, cncf: { label: 'CNCF', start: startDistribution } };

const push = (layout, host, repo) => timed('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${host}/${repo}:bench`]);
const pull = (layout, host, repo) => timed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${host}/${repo}:bench`, `oci:${layout}:bench`]);
const log = (line) => process.stderr.write(`bench registry: ${line}\n`);

/** Runs a command to completion and returns its stdout; fails with its stderr. */
function output(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${err.trim()}`))));
  });
}

/** The manifest must come back 200, as an OCI manifest, with the digest that was pushed, before wrk measures it. */
async function checkManifest(label, url, digest) {
  const res = await fetch(url, { headers: { accept: ACCEPT } });
  const type = res.headers.get('content-type');
  const got = res.headers.get('docker-content-digest');
  await res.arrayBuffer();
  if (res.status !== 200 || type !== OCI_MANIFEST || got !== digest) {
    throw new Error(`${label}: GET ${url} gave ${res.status} ${type} ${got}, expected 200 ${OCI_MANIFEST} ${digest}`);
  }
}

/** wrk on one URL; every response must be 2xx and no socket may fail, or the figure means nothing. */
async function wrk(label, url, script, args = WRK) {
  const text = await output('wrk', [...args, '-s', script, url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1]);
  const total = Number(/(\d+) requests in/.exec(text)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const errors = /Socket errors:.*/.exec(text)?.[0];
  if (!(rps > 0) || !(total > 0) || non2xx > 0 || errors) {
    throw new Error(`${label}: wrk ${url}: ${non2xx} non-2xx responses of ${total}${errors ? `; ${errors}` : ''}\n${text}`);
  }
  return rps;
}

const fmt = (n, digits = 2) => n.toFixed(digits);
const met = (ok) => (ok ? 'met' : '**missed**');
const wrkVersion = () => /wrk (\S+)/.exec(spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';

export async function run() {
  requireBinary('skopeo', 'skopeo');
  requireBinary('docker-registry', 'docker-registry');
  requireBinary('wrk', 'wrk');
  const work = mkdtempSync(join(tmpdir(), 'kiln-bench-registry-'));
  const running = new Set();
  const start = async (name) => {
    const server = await REGISTRIES[name].start();
    running.add(server);
    return server;
  };
  const stop = async (server) => {
    running.delete(server);
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
  };
  const cleanup = async () => {
    await Promise.allSettled([...running].map(stop));
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = (signal) => cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const times = { kiln: { push: [], pull: [] }, cncf: { push: [], pull: [] } };
  const rps = {};
  const big = {};
  let bytes;
  let bigBytes;
  try {
    const src = join(work, 'image');
    const bigSrc = join(work, 'image-1g');
    log(`writing a random 3-layer image under ${work}`);
    bytes = await makeImage(src);
    const digest = JSON.parse(readFileSync(join(src, 'index.json'), 'utf8')).manifests[0].digest;

    // 1. Push and pull: one long-running server each, a fresh repository per round, order alternated;
    // round 0 warms both servers up (JIT, page cache) and is not counted.
    const servers = { kiln: await start('kiln'), cncf: await start('cncf') };
    for (let round = 0; round <= ROUNDS; round++) {
      for (const name of round % 2 ? ['kiln', 'cncf'] : ['cncf', 'kiln']) {
        const { host } = servers[name];
        const out = join(work, `pull-${name}-${round}`);
        clearSkopeoCache();
        const p = await push(src, host, `bench/round${round}`);
        clearSkopeoCache();
        const q = await pull(out, host, `bench/round${round}`);
        rmSync(out, { recursive: true, force: true });
        log(`round ${round || 'warm-up'} ${REGISTRIES[name].label}: push ${fmt(p.seconds)} s, pull ${fmt(q.seconds)} s`);
        if (round === 0) continue;
        times[name].push.push(p.seconds);
        times[name].pull.push(q.seconds);
      }
    }

    // 2. Manifest GET by tag under wrk, after a short warm-up of each.
    const script = join(work, 'accept.lua');
    writeFileSync(script, `wrk.method = "GET"\nwrk.headers["Accept"] = "${ACCEPT}"\n`);
    for (const name of ['kiln', 'cncf']) {
      const url = `http://${servers[name].host}/v2/bench/round0/manifests/bench`;
      await checkManifest(REGISTRIES[name].label, url, digest);
      await wrk(REGISTRIES[name].label, url, script, ['-c16', '-d2s', '-t2']);
    }
    for (const name of ['kiln', 'cncf']) {
      rps[name] = await wrk(REGISTRIES[name].label, `http://${servers[name].host}/v2/bench/round0/manifests/bench`, script);
      log(`manifest GET ${REGISTRIES[name].label}: ${fmt(rps[name], 0)} requests/s`);
    }
    await Promise.all(Object.values(servers).map(stop));

    // 3. Peak RSS (VmHWM of the server process) while 1 GB of five fresh layers is pushed to a fresh server.
    log(`writing a random ${BIG_LAYER_MB.join('+')} MiB image`);
    bigBytes = await makeImage(bigSrc, BIG_LAYER_MB);
    for (const name of ['kiln', 'cncf']) {
      const server = await start(name);
      clearSkopeoCache();
      const p = await push(bigSrc, server.host, 'bench/big');
      big[name] = { seconds: p.seconds, rssMiB: vmHwmMiB(server.pid) };
      await stop(server);
      log(`1 GB push ${REGISTRIES[name].label}: ${fmt(p.seconds)} s, server peak RSS ${fmt(big[name].rssMiB, 0)} MiB`);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }

  const mib = (n) => `${fmt(n / 2 ** 20, 0)} MiB`;
  const timeRow = (op, what) => {
    const k = median(times.kiln[op]);
    const c = median(times.cncf[op]);
    return `| ${what} | ${fmt(k)} s | ${fmt(c)} s | ${fmt(k / c)} | Kiln/CNCF ≤ 0.8 | ${met(k / c <= 0.8)} |`;
  };
  const body = `## registry — \`kiln serve\` vs CNCF Distribution (${new Date().toISOString().slice(0, 10)})

Both registries on loopback in the same run, fresh data directories, same client (skopeo) and images.
- Push/pull: a 3-layer image of ${mib(bytes)} random data (gzip layers), OCI layout → registry → fresh OCI layout;
  one warm-up round then ${ROUNDS} rounds, order alternated, fresh repository each round, skopeo's blob-info cache
  cleared before each copy; medians.
- Manifest GET by tag: \`wrk ${WRK.join(' ')}\` (wrk ${wrkVersion()}) with \`Accept: ${ACCEPT}\`, after a 2 s warm-up; all responses 200.
- Peak RSS: VmHWM of the server process after pushing a 5-layer image of ${mib(bigBytes)} to a fresh server.
Machine: ${machineLine()}.

| measure | Kiln | CNCF | ratio Kiln/CNCF | goal | |
|---|---|---|---|---|---|
${timeRow('push', 'push, oci layout → registry (median)')}
${timeRow('pull', 'pull, registry → oci layout (median)')}
| manifest GET by tag | ${fmt(rps.kiln, 0)} req/s | ${fmt(rps.cncf, 0)} req/s | ${fmt(rps.kiln / rps.cncf)} | Kiln/CNCF ≥ 1 | ${met(rps.kiln >= rps.cncf)} |
| peak RSS while ${mib(bigBytes)} pushed | ${fmt(big.kiln.rssMiB, 0)} MiB | ${fmt(big.cncf.rssMiB, 0)} MiB | ${fmt(big.kiln.rssMiB / big.cncf.rssMiB)} | Kiln < 200 MiB | ${met(big.kiln.rssMiB < 200)} |

The 1 GB push took ${fmt(big.kiln.seconds)} s on Kiln and ${fmt(big.cncf.seconds)} s on CNCF (one run each).
Reproduce: \`npm run bench -- registry\` (BENCH_ROUNDS=${ROUNDS}).`;
  writeSection('registry', body);
  process.stdout.write(`${body}\n`);
}
