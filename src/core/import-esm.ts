/**
 * import() of a package that is ESM only (chalk, conf, execa), for the CLI bundle. The
 * bundle is CommonJS compiled from V8's code cache (src/launch/code-cache.ts), and code
 * that Node 20 deserializes from a cache has lost import()'s loader ("A dynamic import
 * callback was not specified"). So the bundle makes no import() of its own (esbuild
 * turns the others into require) and asks the launcher, a module Node itself loaded,
 * to import for it. Under the TypeScript sources (the tests) it is import() itself.
 */
export function importEsm<T>(specifier: string): Promise<T> {
  const viaLauncher = (globalThis as Record<symbol, unknown>)[LAUNCHER_IMPORT] as ((specifier: string) => Promise<unknown>) | undefined;
  return (viaLauncher ? viaLauncher(specifier) : import(specifier)) as Promise<T>;
}

/** Where the launcher leaves its import for the bundle. */
export const LAUNCHER_IMPORT = Symbol.for('animus.launcher.import');
