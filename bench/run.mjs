#!/usr/bin/env node
// `npm run bench -- NAME`: runs one benchmark (or all) side by side with its peer; figures go to bench/RESULTS.md.
const benches = { copy: () => import('./copy.mjs'), build: () => import('./build.mjs'), registry: () => import('./registry.mjs'), analyze: () => import('./analyze.mjs'), sign: () => import('./sign.mjs') };
// `--rounds N` (build) takes a value that is not a benchmark name.
const names = process.argv.slice(2).filter((a, i, all) => !a.startsWith('-') && all[i - 1] !== '--rounds');
const chosen = names.length > 0 ? names : Object.keys(benches);
for (const name of chosen) {
  const load = benches[name];
  if (!load) {
    process.stderr.write(`bench: unknown benchmark "${name}": choose one of ${Object.keys(benches).join(', ')}\n`);
    process.exit(2);
  }
  const { run } = await load();
  await run();
}
