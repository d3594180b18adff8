// Builds the CLI and the agent runtime with esbuild. esbuild (not tsc) because it
// bundles each entry into few files: the CLI starts faster (fewer module loads on
// `animus --version`) and the runtime that every agent clones is one small file.
// Type checking is `npm run typecheck` (tsc --noEmit).
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { commonOptions as common } from './esbuild-options.mjs';

const { dependencies } = JSON.parse(await readFile('package.json', 'utf8'));

const out = `dist.tmp-${process.pid}`;

/**
 * commander requires node:child_process when it loads, for executable subcommands, which
 * animus has none of: in the bundle it gets a stand-in that loads the module on first
 * use, and a command that starts no process does not load it (some 5 ms at every start).
 */
const lazyChildProcessForCommander = {
  name: 'lazy-child-process-for-commander',
  setup(builder) {
    builder.onResolve({ filter: /^(node:)?child_process$/ }, (args) => (args.importer.includes('/node_modules/commander/') ? { path: 'child_process', namespace: 'animus-lazy' } : undefined));
    builder.onLoad({ filter: /.*/, namespace: 'animus-lazy' }, () => ({ contents: "module.exports = new Proxy({}, { get: (_, name) => require('node:child_process')[name] });", loader: 'js' }));
  },
};

/** Every dependency (and its subpaths) external but the given ones. */
function externalBut(bundled) {
  return Object.keys(dependencies).filter((name) => !bundled.includes(name)).flatMap((name) => [name, `${name}/*`]);
}

// CommonJS output: import.meta.url becomes the bundle's own URL (the packages it loads
// resolve from there, as from the modules before).
const commonJs = {
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  define: { ...common.define, 'import.meta.url': '__animusBundleUrl' },
  banner: { js: 'var __animusBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
};

try {
  await Promise.all([
    // The CLI: one CommonJS file, which the launcher compiles with V8's code cache
    // (src/launch/code-cache.ts); Node 20 caches no ESM. A command's modules, import()ed in
    // the source, still run only when it does: esbuild makes each import() a lazy require,
    // since code V8 deserializes from a cache has lost import()'s loader on Node 20 (the
    // ESM-only packages ask the launcher: src/core/import-esm.ts). commander is bundled in,
    // so that the cache covers it too: every command runs it first.
    build({ ...common, ...commonJs, packages: undefined, external: externalBut(['commander']), plugins: [lazyChildProcessForCommander], entryPoints: { 'cli/main': 'src/cli/main.ts' }, outdir: out, sourcemap: 'linked', supported: { 'dynamic-import': false }, define: { ...common.define, ...commonJs.define, __ANIMUS_BUNDLE_FILE__: '__filename' } }),
    build({ ...common, ...commonJs, entryPoints: { 'cli/launch': 'src/launch/launcher.ts', 'cli/worker': 'src/launch/worker.ts' }, outdir: out }),
    // No source map: every agent's clone carries this file.
    build({ ...common, entryPoints: { 'runtime/main': 'src/runtime/main.ts' }, outdir: out }),
    // The dashboard's page script, for the browser, with uPlot inside: the server may have no internet.
    build({ entryPoints: { 'serve/assets/app': 'src/serve/assets/app.ts' }, outdir: out, bundle: true, platform: 'browser', format: 'iife', target: 'es2020', minify: true, logLevel: 'warning' }),
  ]);
  // One character outside ASCII (a comment esbuild kept) makes V8 hold the whole runtime
  // source as a two-byte string: 340 KiB instead of 170 KiB in every agent's heap.
  const runtime = await readFile(`${out}/runtime/main.js`, 'utf8');
  const wide = runtime.split('\n').findIndex((line) => /[^\x00-\x7f]/.test(line));
  if (wide >= 0) throw new Error(`dist/runtime/main.js line ${wide + 1} has a non-ASCII character (in a comment esbuild keeps): write it in ASCII in the source: ${runtime.split('\n')[wide].trim()}`);
  await mkdir(`${out}/serve/assets`, { recursive: true });
  await copyFile('src/serve/assets/style.css', `${out}/serve/assets/style.css`);
  await copyFile('node_modules/uplot/dist/uPlot.min.css', `${out}/serve/assets/uPlot.min.css`);
  // Swap in the new build whole, so a process reading dist/ never sees half of one.
  const old = `dist.old-${process.pid}`;
  await rename('dist', old).catch(() => {});
  await rename(out, 'dist');
  await rm(old, { recursive: true, force: true });
} catch (error) {
  await rm(out, { recursive: true, force: true });
  throw error;
}
