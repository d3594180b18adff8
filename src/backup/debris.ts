import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../core/pid.js';
import { PARTIAL_EXT } from './archive-format.js';

/**
 * What a SIGKILLed backup leaves in an agent's archive folder: its
 * `<archive>.<pid>.partial` and `.snapshot-<pid>-…` scratch files. Those of processes
 * still running belong to a backup under way and stay. Removed by the next backup of
 * that agent and by `animus init` (for the home's own backups folder).
 */
export function removeDebris(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = name.endsWith(PARTIAL_EXT) ? Number(name.slice(0, -PARTIAL_EXT.length).split('.').pop()) : name.startsWith('.snapshot-') ? Number(name.split('-')[1]) : NaN;
    if (Number.isNaN(pid) || (Number.isInteger(pid) && pid > 0 && isAlive(pid))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(join(dir, name));
  }
  return removed;
}

/** removeDebris over every agent folder of a backups folder. */
export function removeBackupDebris(backupsDir: string): string[] {
  let agents: string[];
  try {
    agents = readdirSync(backupsDir).filter((name) => name.startsWith('agent-'));
  } catch {
    return [];
  }
  return agents.flatMap((name) => removeDebris(join(backupsDir, name)));
}
