// What every esbuild bundle of this repository shares: Node 20 ESM, npm packages left
// external (installed beside the bundle or in the home's shared runtime), the version.
import { readFile } from 'node:fs/promises';

const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));

export const commonOptions = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  define: { __ANIMUS_VERSION__: JSON.stringify(version) },
};
