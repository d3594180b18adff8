import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/fs.js';
import type { AgentPaths } from '../home/layout.js';

/**
 * Where an agent pushed to a cluster runs: `kubernetes.json` in its local folder, written by
 * `animus kubernetes push`. The kubernetes process manager and the commands forwarded with
 * `kubectl exec` read it; the local folder keeps its settings, so `animus list` still shows it.
 */
export const PLACEMENT_FILE = 'kubernetes.json';

export interface Placement {
  context?: string;
  namespace: string;
  statefulSet: string;
  pod: string;
  container: string;
  pushedAt: string;
}

export async function readPlacement(paths: AgentPaths): Promise<Placement | undefined> {
  try {
    return JSON.parse(await readFile(join(paths.dir, PLACEMENT_FILE), 'utf8')) as Placement;
  } catch {
    return undefined;
  }
}

export async function writePlacement(paths: AgentPaths, placement: Placement): Promise<void> {
  await writeFileAtomic(join(paths.dir, PLACEMENT_FILE), `${JSON.stringify(placement, null, 2)}\n`);
}
