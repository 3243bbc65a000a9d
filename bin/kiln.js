#!/usr/bin/env node
// Entry point: the TypeScript is compiled to dist/ by `npm install` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  process.stderr.write('kiln: not built yet: run `npm install` (or `npm run build`) in the kiln checkout\n');
  process.exit(1);
}
await import(main);
