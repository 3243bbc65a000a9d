// Bundles the compiled CLI (dist/cli/main.js, from `tsc -p tsconfig.json`) into dist/bundle/ with esbuild:
// one file per lazily loaded part instead of hundreds of modules, which cuts kiln's start-up time.
// bin/kiln.js runs dist/bundle/main.js when it is not older than dist/cli/main.js, else dist/cli/main.js.
import { existsSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/bundle`;

/** Exits 1 with one line on stderr (esbuild has printed its diagnostics above it). */
function fail(message) {
  process.stderr.write(`bundle: ${message}\n`);
  process.exit(1);
}

/** Whether Node loads `file` as CommonJS: .cjs, or .js under a package.json without "type": "module". */
function isCommonJs(file) {
  if (file.endsWith('.cjs')) return true;
  if (!file.endsWith('.js')) return false;
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) return JSON.parse(readFileSync(pkg, 'utf8')).type !== 'module';
  }
  return true;
}

/**
 * `await import('pkg')` of a CommonJS package: Node gives module.exports as `default` plus the names it detects
 * (`(await import('yaml')).parse`), esbuild's split chunk only `default`. This plugin puts a wrapper in front of
 * each such import that exports what Node's own import() of the package (done here) exports, as dist/cli gets them.
 */
const SKIP = Symbol('resolving past node-cjs-exports');
const nodeCjsExports = {
  name: 'node-cjs-exports',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.pluginData === SKIP) return undefined;
      const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: SKIP });
      if (r.errors.length > 0 || r.external || !isCommonJs(r.path)) return undefined;
      return { path: r.path, namespace: 'node-cjs-exports' };
    });
    b.onLoad({ filter: /.*/, namespace: 'node-cjs-exports' }, async (args) => {
      const names = Object.keys(await import(pathToFileURL(args.path).href)).filter((n) => !['default', '__esModule', 'module.exports'].includes(n));
      const lines = [`const m = require(${JSON.stringify(args.path)});`, 'export default m;'];
      names.forEach((name, i) => lines.push(`const e${i} = m[${JSON.stringify(name)}];`, `export { e${i} as ${JSON.stringify(name)} };`));
      return { contents: lines.join('\n'), resolveDir: dirname(args.path), loader: 'js' };
    });
  },
};

if (!existsSync(`${root}dist/cli/main.js`)) fail('dist/cli/main.js not found: run `tsc -p tsconfig.json` first');

let result;
try {
  result = await build({
    absWorkingDir: root,
    entryPoints: ['dist/cli/main.js'],
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // Code splitting keeps every dynamic import() a separate chunk, loaded only by the commands that need it.
    splitting: true,
    // A native addon (.node binary found through `bindings`): loaded from node_modules at run time. Everything
    // else bundles; pino works bundled because kiln logs through pino.destination only (pino.transport() would
    // need its worker files, found through __dirname: make pino external before using it).
    external: ['sqlite3'],
    // Bundled CommonJS dependencies call require() for node built-ins; ESM output has no require of its own.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    // Linked maps (next to each chunk, not inline) chain tsc's maps: `node --enable-source-maps` shows .ts lines.
    sourcemap: 'linked',
    plugins: [nodeCjsExports],
    logLevel: 'warning',
    metafile: true,
  });
} catch (err) {
  const first = err?.errors?.[0];
  const where = first?.location ? `${first.location.file}:${first.location.line}: ` : '';
  const what = first ? `${where}${first.text}` : String(err?.message ?? err);
  fail(`esbuild could not bundle dist/cli/main.js: ${what}`);
}

// bin/kiln.js runs the bundle only while main.js is not older than dist/cli/main.js: date it now even if an
// unchanged file was left alone.
const now = new Date();
utimesSync(join(outdir, 'main.js'), now, now);

// Chunk names carry content hashes, so a build writes beside the files of the one before instead of over them: a
// kiln process still running from that build (`kiln serve`) keeps finding the chunks it loads lazily. Files of
// older builds are removed; .files.json lists this build's for the next one.
const list = join(outdir, '.files.json');
const previous = existsSync(list) ? JSON.parse(readFileSync(list, 'utf8')) : [];
const current = Object.keys(result.metafile.outputs).map((file) => basename(file));
for (const name of readdirSync(outdir)) {
  if (name !== '.files.json' && !current.includes(name) && !previous.includes(name)) rmSync(join(outdir, name), { force: true });
}
writeFileSync(list, `${JSON.stringify(current)}\n`);
