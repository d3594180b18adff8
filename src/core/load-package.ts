import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A CommonJS package through require, loaded on first use rather than when the
 * importing module loads: a native addon (better-sqlite3) or a package with a heavy
 * import graph costs milliseconds that a command whose answer
 * comes from elsewhere (a health check served from its cache) should not pay. And
 * require skips Node's ESM wrapper for CommonJS, which for commander cost 3-4 ms more
 * than require on every start (Node 20).
 */
export function loadOnUse<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(name) as T);
}
