// Runs a benchmark script: `npm run bench -- <name> [args]` bundles bench/<name>.ts with
// esbuild (npm packages stay external) and runs it with node, so benchmarks can use the
// domain modules directly without a TypeScript loader. Benchmarks print figures; they
// are not tests and assert nothing.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { commonOptions } from './esbuild-options.mjs';

const [name, ...args] = process.argv.slice(2);
if (!name) {
  console.error('usage: npm run bench -- <name> [args]   (bench/<name>.ts)');
  process.exit(2);
}
await mkdir('.bench', { recursive: true });
const outfile = `.bench/${name}.mjs`;
await build({ ...commonOptions, entryPoints: [`bench/${name}.ts`], outfile });
const run = spawnSync(process.execPath, ['--expose-gc', outfile, ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
