import { join } from 'node:path';
import { EXIT } from '../core/errors.js';
import { LAUNCHER_IMPORT } from '../core/import-esm.js';
import { loadBundle } from './code-cache.js';

/**
 * dist/cli/launch.cjs, what bin/animus.js starts: it loads the CLI bundle
 * (dist/cli/main.cjs) through the code cache, which must be plain code of its own: the
 * bundle cannot load itself. Worker threads start from dist/cli/worker.cjs instead,
 * so that a command which starts none does not load node:worker_threads.
 */
export interface CliBundle {
  main(argv: readonly string[]): Promise<void>;
  runWorkerEntry(entry: string): Promise<void>;
}

export const BUNDLE = join(__dirname, 'main.cjs');

// The bundle's import() of ESM-only packages (core/import-esm.ts): this module's own import() works.
(globalThis as Record<symbol, unknown>)[LAUNCHER_IMPORT] = (specifier: string) => import(specifier);

/** Runs the CLI; the code cache is written after the command, when it had none to use. */
export async function launch(argv: readonly string[]): Promise<void> {
  const bundle = loadBundle<CliBundle>(BUNDLE, cacheKey(argv), process.env, { save: true });
  await bundle.exports.main(argv);
  // A usage error compiled next to nothing: its cache would serve the next proper run poorly.
  if (process.exitCode !== EXIT.usage) bundle.save();
}

/**
 * The command word the cache is kept under: the first argument that is a plain word
 * (`--home /x health` is `health`); `help` for none. Only the cache's name depends on
 * it, never what runs.
 */
export function cacheKey(argv: readonly string[]): string {
  const args = argv.slice(2);
  if (args.some((arg) => arg === '--version' || arg === '-V')) return 'version';
  if (args.some((arg) => arg === '--help' || arg === '-h')) return 'help';
  return args.find((arg) => /^[a-z][a-z-]{0,31}$/.test(arg)) ?? 'help';
}
