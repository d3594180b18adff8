import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { pathExists } from '../core/fs.js';
import type { AgentPaths } from '../home/layout.js';
import { cloneDir } from '../instances/registry.js';

/**
 * The file a manager runs for an agent: its own clone's package.json `main`. Read at
 * every start, so an update that moves the entry point is picked up.
 */
export async function resolveRuntimeEntry(paths: AgentPaths): Promise<string> {
  const clone = (await cloneDir(paths)) ?? paths.clone;
  const manifest = join(clone, 'package.json');
  let main = 'index.js';
  try {
    const parsed = JSON.parse(await readFile(manifest, 'utf8')) as { main?: unknown };
    if (typeof parsed.main === 'string' && parsed.main.trim() !== '') main = parsed.main;
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new AnimusError(
      'ENOTFOUND',
      missing
        ? `${paths.agent.id} has no runtime to run (${manifest} is missing): redeploy it or run \`animus update ${paths.agent.id}\``
        : `${manifest} is not valid JSON: run \`animus update ${paths.agent.id}\` to restore the runtime`,
      { cause: error },
    );
  }
  const entry = join(clone, main);
  if (!(await pathExists(entry))) {
    throw new AnimusError('ENOTFOUND', `${paths.agent.id}'s runtime entry ${entry} is missing: run \`animus update ${paths.agent.id}\` to restore the runtime`);
  }
  return entry;
}
