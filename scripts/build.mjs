// Builds the CLI and the agent runtime with esbuild. esbuild (not tsc) because it
// bundles each entry into few files: the CLI starts faster (fewer module loads on
// `animus --version`) and the runtime that every agent clones is one small file.
// Type checking is `npm run typecheck` (tsc --noEmit).
import { build } from 'esbuild';
import { readFile, rm } from 'node:fs/promises';

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
  define: { __ANIMUS_VERSION__: JSON.stringify(JSON.parse(await readFile('package.json', 'utf8')).version) },
};

await rm('dist', { recursive: true, force: true });
await Promise.all([
  // Commands are dynamic import()s: splitting keeps each in its own chunk, loaded on use.
  build({ ...common, entryPoints: { 'cli/main': 'src/cli/main.ts' }, outdir: 'dist', splitting: true, chunkNames: 'cli/chunks/[name]-[hash]' }),
  build({ ...common, entryPoints: { 'runtime/main': 'src/runtime/main.ts' }, outdir: 'dist' }),
]);
