import { join } from 'node:path';
import { AnimusError, describeError, isAnimusError } from '../core/errors.js';
import { pathExists } from '../core/fs.js';
import { ensureHome } from '../home/init.js';
import { homeLayout, type AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { agentDbPath } from '../instances/db-path.js';
import { ensureAgentDir } from '../core/agent-fs.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { cloneDir, requireAgent } from '../instances/registry.js';
import { withProcessManager } from '../process/open.js';
import { resolveRuntimeEntry } from '../process/runtime-entry.js';
import { RUNNING_STATES, type ProcessManager, type ProcessState } from '../process/types.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { commitSubject, currentBranch, currentCommit, fetchOrigin, isAncestor, isSameRepoPath, localChanges, moveTo, originUrl, resolveTarget } from './git-ops.js';
import { appendHistory, pruneSnapshots, snapshotName } from './history.js';

/**
 * `animus update`: moves one agent's clone to a newer runtime commit and proves it
 * runs, or puts the old one back.
 *
 *   fetch → resolve the target (fast-forward of the branch's upstream, or --ref) →
 *   snapshot the database (online backup, into updates/) → record the previous commit →
 *   check out → check the entry point → restart through the agent's process manager,
 *   which only reports success once the process stayed up for the grace period →
 *   on any failure: check out the previous commit, restart, record, and fail.
 *
 * An agent that was not running gets its code moved and is left stopped.
 */
export interface UpdateOptions {
  home: string;
  id: string;
  ref?: string;
  /** How long the restarted process must stay up to pass (default 3 s). */
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onStep?: (step: string) => void;
}

export interface UpdateResult {
  id: string;
  /** `current`: already at the target, nothing was done. */
  outcome: 'updated' | 'current';
  from: string;
  to: string;
  ref: string;
  branch: string | null;
  subject: string;
  /** Whether the instance was restarted (it was running) and passed the health gate. */
  restarted: boolean;
  state: ProcessState | null;
  /** Path of the pre-update database snapshot. */
  snapshot: string | null;
}

export const DEFAULT_GRACE_MS = 3_000;

export async function updateAgent(options: UpdateOptions): Promise<UpdateResult> {
  const step = options.onStep ?? (() => {});
  const paths = await requireAgent(options.home, options.id);
  const id = paths.agent.id;
  return withAgentLock(paths, { command: 'update', signal: options.signal }, async () => {
    const settings = await readSettings(paths);
    const clone = await requireClone(paths);
    await requireClean(clone, id);
    if (isSameRepoPath(await originUrl(clone), homeLayout(options.home).runtimeRepo)) {
      // Publishes this animus's runtime build as a new commit when animus was upgraded.
      step('publishing the runtime build into the home');
      await ensureHome(options.home);
    }
    step(`fetching ${id}'s runtime`);
    await fetchOrigin(clone, options.signal);
    const from = await currentCommit(clone);
    const fromBranch = await currentBranch(clone);
    const target = await resolveTarget(clone, options.ref, id);
    if (options.ref === undefined && !(await isAncestor(clone, from, target.commit))) {
      throw new AnimusError(
        'EEXISTS',
        `${id}'s runtime ${from.slice(0, 12)} is not behind ${target.ref} (${target.commit.slice(0, 12)}): not a fast-forward, nothing was changed; pass --ref ${target.ref.replace(/^origin\//, '')} to move to it anyway`,
      );
    }
    const subject = await commitSubject(clone, target.commit);
    if (target.commit === from && (target.branch ?? fromBranch) === fromBranch) {
      return { id, outcome: 'current', from, to: from, ref: target.ref, branch: fromBranch ?? null, subject, restarted: false, state: null, snapshot: null };
    }

    return await withProcessManager(settings.process_manager, { home: options.home, env: options.env, startGraceMs: options.graceMs ?? DEFAULT_GRACE_MS }, async (manager) => {
      const before = (await manager.status([paths]))[0]?.state ?? 'unknown';
      const running = RUNNING_STATES.has(before);

      const at = new Date();
      let snapshot: string | null = null;
      // The database the runtime uses, not always animus.db (instances/db-path).
      const dbPath = agentDbPath(paths);
      if (await pathExists(dbPath)) {
        step('snapshotting the database');
        snapshot = join(ensureAgentDir(paths.dir, 'updates'), snapshotName(at, from));
        await snapshotDatabase(dbPath, snapshot);
      }
      const record = await appendHistory(paths, {
        action: 'update',
        at: at.toISOString(),
        from,
        to: target.commit,
        fromBranch,
        toBranch: target.branch,
        ref: target.ref,
        snapshot: snapshot ? snapshotName(at, from) : undefined,
        outcome: 'pending',
      });

      step(`checking out ${target.commit.slice(0, 12)}`);
      let failure: string | undefined;
      let logTail: string[] | undefined;
      let state: ProcessState | null = null;
      try {
        await moveTo(clone, target.commit, target.branch ?? fromBranch);
        await resolveRuntimeEntry(paths);
        if (running) {
          step(`restarting ${id} and waiting for it to stay up`);
          const [result] = await manager.restart([paths]);
          state = result?.info?.state ?? null;
          if (!result || result.outcome === 'failed') {
            failure = result?.message ?? 'the process manager did not report on it';
            logTail = result?.logTail;
          }
        }
      } catch (error) {
        if (!isAnimusError(error) || error.code === 'EINTERRUPTED') throw error;
        failure = describeError(error);
      }

      if (failure === undefined) {
        await record({ outcome: 'updated' });
        await pruneSnapshots(paths);
        return { id, outcome: 'updated', from, to: target.commit, ref: target.ref, branch: target.branch ?? fromBranch ?? null, subject, restarted: running, state, snapshot };
      }
      throw await revert({ manager, paths, clone, from, fromBranch, to: target.commit, running, failure, logTail, record, step });
    });
  });
}

interface RevertContext {
  manager: ProcessManager;
  paths: AgentPaths;
  clone: string;
  from: string;
  fromBranch: string | undefined;
  to: string;
  running: boolean;
  failure: string;
  logTail?: string[];
  record: (change: Parameters<Awaited<ReturnType<typeof appendHistory>>>[0]) => Promise<void>;
  step: (text: string) => void;
}

/** Puts the previous commit back and restarts it; returns the error to throw either way. */
async function revert(ctx: RevertContext): Promise<AnimusError> {
  const id = ctx.paths.agent.id;
  const detail: Record<string, unknown> = { id, from: ctx.from, to: ctx.to, reason: ctx.failure, ...(ctx.logTail ? { logTail: ctx.logTail } : {}) };
  ctx.step(`rolling ${id} back to ${ctx.from.slice(0, 12)}`);
  try {
    await moveTo(ctx.clone, ctx.from, ctx.fromBranch);
    let state: ProcessState | null = null;
    if (ctx.running) {
      const [result] = await ctx.manager.restart([ctx.paths]);
      state = result?.info?.state ?? null;
      if (!result || result.outcome === 'failed') {
        await ctx.record({ outcome: 'rolled-back', reason: ctx.failure });
        return new AnimusError(
          'EFAILED',
          `${id}: the update to ${ctx.to.slice(0, 12)} failed (${ctx.failure}); rolled back to ${ctx.from.slice(0, 12)}, but that did not stay up either: ${result?.message ?? 'no report'}`,
          { detail: { ...detail, rolledBack: true, state } },
        );
      }
    }
    await ctx.record({ outcome: 'rolled-back', reason: ctx.failure });
    return new AnimusError(
      'EFAILED',
      `${id}: the update to ${ctx.to.slice(0, 12)} failed (${ctx.failure}); rolled back to ${ctx.from.slice(0, 12)}${ctx.running ? ', which is running again' : ''}`,
      { detail: { ...detail, rolledBack: true, state } },
    );
  } catch (error) {
    await ctx.record({ outcome: 'failed', reason: `${ctx.failure}; rollback: ${describeError(error)}` }).catch(() => {});
    return new AnimusError(
      'EFAILED',
      `${id}: the update to ${ctx.to.slice(0, 12)} failed (${ctx.failure}) and the automatic rollback to ${ctx.from.slice(0, 12)} failed too (${describeError(error)}): run \`animus rollback ${id}\``,
      { cause: error, detail: { ...detail, rolledBack: false } },
    );
  }
}

export async function requireClone(paths: AgentPaths): Promise<string> {
  const clone = await cloneDir(paths);
  if (!clone) throw new AnimusError('ENOTFOUND', `${paths.agent.id} has no runtime clone (${paths.clone} is not a git clone): redeploy it`);
  return clone;
}

export async function requireClean(clone: string, id: string): Promise<void> {
  const changed = await localChanges(clone);
  if (changed.length > 0) {
    const list = changed.slice(0, 3).join(', ') + (changed.length > 3 ? `, … (${changed.length} files)` : '');
    throw new AnimusError('EEXISTS', `${id}'s runtime clone has local changes (${list}): commit or discard them (git -C ${clone} checkout -- .) so nothing is lost; nothing was changed`);
  }
}
