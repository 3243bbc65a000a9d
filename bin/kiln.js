#!/usr/bin/env node
// Entry point: the TypeScript is compiled to dist/ by `npm install` (prepare) or `npm run build`, which also bundle
// it into dist/bundle/ (scripts/bundle.mjs) for a faster start-up. The bundle runs only while it is not older than
// dist/cli/main.js, so after a bare `tsc` the fresh dist/cli/ runs rather than a stale bundle.
import { statSync } from 'node:fs';

const cliMain = new URL('../dist/cli/main.js', import.meta.url);
const bundleMain = new URL('../dist/bundle/main.js', import.meta.url);
const cli = statSync(cliMain, { throwIfNoEntry: false });
const bundle = statSync(bundleMain, { throwIfNoEntry: false });
if (!cli && !bundle) {
  process.stderr.write('kiln: not built yet: run `npm install` (or `npm run build`) in the kiln checkout\n');
  process.exit(1);
}
await import((bundle && (!cli || bundle.mtimeMs >= cli.mtimeMs) ? bundleMain : cliMain).href);
