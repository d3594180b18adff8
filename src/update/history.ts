import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureAgentDir, readAgentText, writeAgentFileAtomic } from '../core/agent-fs.js';
import { AnimusError, EXIT, describeError } from '../core/errors.js';
import type { AgentPaths } from '../home/layout.js';

/**
 * Each agent keeps its own update record in `<agent>/updates/`:
 *   history.json            every update and rollback, newest last
 *   <stamp>-<from12>.db     the database as it was just before that update
 * It lives in the agent's folder so it travels with it (backup, move to trash) and
 * needs nothing from the home. Only the newest KEEP_SNAPSHOTS snapshots are kept.
 */
export const KEEP_SNAPSHOTS = 5;
const HISTORY_LIMIT = 200;

export interface HistoryEntry {
  action: 'update' | 'rollback';
  at: string;
  /** Commit before and after. */
  from: string;
  to: string;
  /** Branch checked out before (undefined: detached), so a rollback restores it. */
  fromBranch?: string;
  toBranch?: string;
  ref?: string;
  /** update: the pre-update database snapshot (file name in updates/). */
  snapshot?: string;
  /**
   * update: `pending` while running, `updated` once healthy, `rolled-back` when the gate
   * failed or a later `animus rollback` undid it, `failed` when it could not even be rolled back.
   * rollback: `done` or `failed`.
   */
  outcome: 'pending' | 'updated' | 'rolled-back' | 'failed' | 'done';
  /** rollback --with-data: the snapshot restored and where the replaced database was kept. */
  restoredData?: string;
  keptDatabase?: string;
  reason?: string;
}

export async function readHistory(paths: AgentPaths): Promise<HistoryEntry[]> {
  const file = join(paths.updates, 'history.json');
  // updates/ is in the agent's folder: never read through a link (core/agent-fs).
  const text = readAgentText(paths.dir, 'updates/history.json');
  if (text === undefined) return [];
  try {
    const parsed = JSON.parse(text) as { entries?: HistoryEntry[] };
    if (!Array.isArray(parsed.entries)) throw new Error('no entries');
    return parsed.entries;
  } catch (error) {
    throw new AnimusError('EIO', `${file} is not a valid update history (${describeError(error)}): move it aside to start a new one`, { cause: error, exitCode: EXIT.invalidData });
  }
}

export async function writeHistory(paths: AgentPaths, entries: HistoryEntry[]): Promise<void> {
  ensureAgentDir(paths.dir, 'updates');
  const kept = entries.slice(-HISTORY_LIMIT);
  await writeAgentFileAtomic(paths.dir, 'updates/history.json', `${JSON.stringify({ format: 1, entries: kept }, null, 2)}\n`);
}

/** Appends an entry and returns a function that rewrites it in place (outcome changes). */
export async function appendHistory(paths: AgentPaths, entry: HistoryEntry): Promise<(change: Partial<HistoryEntry>) => Promise<void>> {
  const entries = await readHistory(paths);
  entries.push(entry);
  await writeHistory(paths, entries);
  return async (change) => {
    Object.assign(entry, change);
    const current = await readHistory(paths);
    const index = current.findIndex((e) => e.at === entry.at && e.action === entry.action && e.from === entry.from);
    if (index >= 0) current[index] = entry;
    else current.push(entry);
    await writeHistory(paths, current);
  };
}

export function snapshotName(at: Date, from: string): string {
  return `${at.toISOString().replace(/[:.]/g, '-')}-${from.slice(0, 12)}.db`;
}

/** Removes all but the newest KEEP_SNAPSHOTS pre-update snapshots. */
export async function pruneSnapshots(paths: AgentPaths): Promise<string[]> {
  const dir = paths.updates;
  const names = (await readdir(dir).catch(() => [] as string[])).filter((name) => /^\d{4}-.*\.db$/.test(name)).sort();
  const old = names.slice(0, Math.max(0, names.length - KEEP_SNAPSHOTS));
  await Promise.all(old.map((name) => rm(join(dir, name), { force: true })));
  return old;
}
