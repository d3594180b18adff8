// Runs a benchmark script: `npm run bench -- <name> [args]` bundles bench/<name>.ts with
// esbuild (npm packages stay external) and runs it with node, so benchmarks can use the
// domain modules directly without a TypeScript loader. Benchmarks print figures; they
// are not tests and assert nothing.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';

const [name, ...args] = process.argv.slice(2);
if (!name) {
  console.error('usage: npm run bench -- <name> [args]   (bench/<name>.ts)');
  process.exit(2);
}
const version = JSON.parse(await readFile('package.json', 'utf8')).version;
await mkdir('.bench', { recursive: true });
const outfile = `.bench/${name}.mjs`;
await build({
  entryPoints: [`bench/${name}.ts`],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  define: { __ANIMUS_VERSION__: JSON.stringify(version) },
});
const run = spawnSync(process.execPath, ['--expose-gc', outfile, ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
