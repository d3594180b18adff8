import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentId } from '../core/agent-id.js';
import { DIR_MODE, ensureDir } from '../core/fs.js';
import { homeLayout, type AgentPaths } from '../home/layout.js';
import { withAgentLock } from './operation-lock.js';
import { requireAgent } from './registry.js';

export interface RemoveOptions {
  home: string;
  agent: AgentId;
  purge: boolean;
  /** Stops the instance first (the process manager's part); runs before the folder moves. */
  stop?: () => Promise<void>;
  now?: Date;
}

export interface RemoveResult {
  id: string;
  purged: boolean;
  trashedTo?: string;
}

/**
 * Removes an agent: stopped first, then moved out of the home into `.trash/<date>/`
 * (on the same filesystem, so the move is one rename and cannot half-happen), or
 * deleted with purge.
 */
export async function removeAgent(options: RemoveOptions): Promise<RemoveResult> {
  const paths = await requireAgent(options.home, options.agent.id);
  return withAgentLock(paths, { command: 'remove' }, () => removeLocked(options, paths));
}

async function removeLocked(options: RemoveOptions, paths: AgentPaths): Promise<RemoveResult> {
  await options.stop?.();
  if (options.purge) {
    await rm(paths.dir, { recursive: true, force: true });
    return { id: options.agent.id, purged: true };
  }
  const now = options.now ?? new Date();
  const day = now.toISOString().slice(0, 10);
  const stamp = now.toISOString().slice(11, 19).replace(/:/g, '');
  const trashDay = join(homeLayout(options.home).trashDir, day);
  await ensureDir(homeLayout(options.home).trashDir, DIR_MODE);
  await mkdir(trashDay, { recursive: true, mode: DIR_MODE });
  const destination = join(trashDay, `${options.agent.id}-${stamp}`);
  await rename(paths.dir, destination);
  return { id: options.agent.id, purged: false, trashedTo: destination };
}
