import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';

/**
 * The user's cache folder for animus ($XDG_CACHE_HOME/animus, else ~/.cache/animus):
 * what animus keeps for speed alone, outside any home (the code cache of the CLI, the
 * health cache of a home made by hand). Losing it costs time, never data.
 */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache');
  return join(base, 'animus');
}
