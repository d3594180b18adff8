import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { pathExists } from '../core/fs.js';
import { readSettings } from '../instances/agent-files.js';
import { agentDbPath } from '../instances/db-path.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { requireAgent } from '../instances/registry.js';
import { withProcessManager } from '../process/open.js';
import { RUNNING_STATES, type ProcessState } from '../process/types.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { currentBranch, currentCommit, moveTo } from './git-ops.js';
import { appendHistory, readHistory, writeHistory } from './history.js';
import { DEFAULT_GRACE_MS, requireClean, requireClone } from './update.js';

/**
 * `animus rollback`: back to the commit before the last update that is still in
 * effect; with `withData`, also back to the database snapshot taken just before that
 * update, after stopping the instance (the replaced database is kept in updates/).
 * Run again, it goes one update further back.
 */
export interface RollbackOptions {
  home: string;
  id: string;
  withData?: boolean;
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  onStep?: (step: string) => void;
}

export interface RollbackResult {
  id: string;
  from: string;
  to: string;
  branch: string | null;
  /** When the undone update happened. */
  undid: string;
  withData: boolean;
  /** The snapshot restored (withData). */
  restoredData: string | null;
  /** Where the database that was replaced now lives (withData). */
  keptDatabase: string | null;
  restarted: boolean;
  state: ProcessState | null;
}


export async function rollbackAgent(options: RollbackOptions): Promise<RollbackResult> {
  const step = options.onStep ?? (() => {});
  const paths = await requireAgent(options.home, options.id);
  const id = paths.agent.id;
  return withAgentLock(paths, { command: 'rollback' }, async () => {
    const history = await readHistory(paths);
    // `pending` is an update whose command was killed mid-way (we hold the lock now, so
    // no live command owns it): its code may well be checked out, so it can be undone.
    const last = [...history].reverse().find((entry) => entry.action === 'update' && (entry.outcome === 'updated' || entry.outcome === 'pending'));
    if (!last) throw new AnimusError('ENOTFOUND', `${id} has no update to roll back (its update history in ${paths.updates} has none in effect)`);
    const settings = await readSettings(paths);
    const clone = await requireClone(paths);
    await requireClean(clone, id);
    const snapshot = last.snapshot ? join(paths.updates, last.snapshot) : undefined;
    if (options.withData && (!snapshot || !(await pathExists(snapshot)))) {
      throw new AnimusError('ENOTFOUND', `the database snapshot of ${id}'s update of ${last.at} is gone (only the newest are kept): roll back without --with-data, or restore a backup`);
    }
    const from = await currentCommit(clone);
    const fromBranch = await currentBranch(clone);

    return await withProcessManager(settings.process_manager, { home: options.home, env: options.env, startGraceMs: options.graceMs ?? DEFAULT_GRACE_MS }, async (manager) => {
      const running = RUNNING_STATES.has((await manager.status([paths]))[0]?.state ?? 'unknown');
      const at = new Date().toISOString();
      let keptDatabase: string | null = null;
      if (options.withData) {
        if (running) {
          step(`stopping ${id}`);
          const [stopped] = await manager.stop([paths]);
          if (stopped?.outcome === 'failed') throw new AnimusError('EPM', `cannot stop ${id} to restore its database: ${stopped.message ?? 'no report'}; nothing was changed`);
        }
        step('restoring the database snapshot');
        const dbPath = agentDbPath(paths);
        if (await pathExists(dbPath)) {
          keptDatabase = join(paths.updates, `pre-rollback-${at.replace(/[:.]/g, '-')}.db`);
          await snapshotDatabase(dbPath, keptDatabase);
        }
        // The replaced database's WAL must not be applied to the restored file.
        await rm(`${dbPath}-wal`, { force: true });
        await rm(`${dbPath}-shm`, { force: true });
        await snapshotDatabase(snapshot!, dbPath);
        await chmod(dbPath, 0o600);
        // Opening the (WAL-mode) snapshot made its -wal/-shm; nobody else has it open.
        await rm(`${snapshot}-wal`, { force: true });
        await rm(`${snapshot}-shm`, { force: true });
      }
      step(`checking out ${last.from.slice(0, 12)}`);
      await moveTo(clone, last.from, last.fromBranch);

      last.outcome = 'rolled-back';
      last.reason = `animus rollback at ${at}`;
      await writeHistory(paths, history);
      const record = await appendHistory(paths, {
        action: 'rollback',
        at,
        from,
        to: last.from,
        fromBranch,
        toBranch: last.fromBranch,
        outcome: 'done',
        ...(options.withData ? { restoredData: last.snapshot, keptDatabase: keptDatabase ?? undefined } : {}),
      });

      let state: ProcessState | null = null;
      if (running) {
        step(`restarting ${id} and waiting for it to stay up`);
        const [result] = await manager.restart([paths]);
        state = result?.info?.state ?? null;
        if (!result || result.outcome === 'failed') {
          await record({ outcome: 'failed', reason: result?.message });
          throw new AnimusError('EFAILED', `${id} is back on ${last.from.slice(0, 12)} but did not stay up: ${result?.message ?? 'no report'}`, {
            detail: { id, to: last.from, logTail: result?.logTail },
          });
        }
      }
      return {
        id,
        from,
        to: last.from,
        branch: last.fromBranch ?? null,
        undid: last.at,
        withData: options.withData === true,
        restoredData: options.withData ? snapshot! : null,
        keptDatabase,
        restarted: running,
        state,
      };
    });
  });
}
