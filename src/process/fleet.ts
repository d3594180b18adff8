import { existsSync } from 'node:fs';
import type { ProcessManagerName } from '../config/settings.js';
import { AnimusError, describeError } from '../core/errors.js';
import { agentPaths, swapJournalOf, type AgentPaths } from '../home/layout.js';
import { folderSafetyProblems } from '../instances/folder-safety.js';
import { requireAgent, scanAgentFolders } from '../instances/registry.js';
import { readRuntimeState } from '../instances/runtime-state.js';
import { groupByManager, runFleetAction, withProcessManager, type OpenOptions } from './open.js';
import type { ProcessActionResult, ProcessInfo } from './types.js';

export type FleetVerb = 'start' | 'stop' | 'restart';

/**
 * The agents a command names, all resolved before anything is touched: an unknown
 * id fails the whole command with nothing started. `--all` is every valid agent
 * folder in the home.
 */
export async function resolveTargets(home: string, ids: string[], all: boolean): Promise<AgentPaths[]> {
  if (all && ids.length > 0) throw new AnimusError('EUSAGE', 'pass agent ids or --all, not both');
  if (!all && ids.length === 0) throw new AnimusError('EUSAGE', 'name the agents (agent-<uuid> ...) or pass --all for every agent in the home');
  if (all) {
    const folders = await scanAgentFolders(home);
    return folders.flatMap((f) => (f.agent ? [agentPaths(home, f.agent)] : []));
  }
  const seen = new Set<string>();
  const targets: AgentPaths[] = [];
  for (const id of ids) {
    const paths = await requireAgent(home, id);
    if (seen.has(paths.agent.id)) continue;
    seen.add(paths.agent.id);
    targets.push(paths);
  }
  return targets;
}

export interface FleetVerbOptions extends OpenOptions {
  /** The command as typed (`start --all`), shown to whoever finds an agent busy. */
  command?: string;
}

/**
 * start, stop or restart over agents, each under its operation lock (an agent another
 * command holds is reported busy and left alone; the rest still run). Start and
 * restart first run the runtime's own configuration check: an agent that would refuse
 * to start is not touched, so a restart with a broken .env leaves it running.
 */
export async function runFleetVerb(verb: FleetVerb, agents: AgentPaths[], options: FleetVerbOptions): Promise<ProcessActionResult[]> {
  const { withAgentLocks } = await import('../instances/operation-lock.js');
  return withAgentLocks(agents, { command: options.command ?? verb }, async ({ locked, busy }) => {
    const byId = new Map<string, ProcessActionResult>();
    for (const { paths, error } of busy) byId.set(paths.agent.id, { id: paths.agent.id, outcome: 'failed', message: error.message, code: error.code });
    let ready = locked;
    if (verb !== 'stop') {
      // A folder with a link where a file should be is not started: the runtime (and, under
      // systemd, root opening its log) would follow it. One line per agent, the rest go ahead.
      ready = ready.filter((paths) => {
        const problem = folderSafetyProblems(paths)[0];
        if (problem) byId.set(paths.agent.id, { id: paths.agent.id, outcome: 'failed', code: 'EUNSAFEPATH', message: `${paths.agent.id} not ${verb === 'start' ? 'started' : 'restarted'}: ${problem}` });
        return !problem;
      });
      const { preflightProblems } = await import('./preflight.js');
      ready = ready.filter((paths) => {
        const problems = preflightProblems(paths, options.env ?? process.env);
        if (problems.length === 0) return true;
        const kept = verb === 'restart' ? 'nothing was changed (a running instance keeps running)' : 'nothing was started';
        byId.set(paths.agent.id, { id: paths.agent.id, outcome: 'failed', code: problems.some((p) => p.includes('settings.json')) ? 'EBADSETTINGS' : 'EBADENV', message: `${paths.agent.id} would not start: ${problems.join('; ')}; ${kept}` });
        return false;
      });
      // One poller per bot token: a second agent on the same token would split its chats.
      const { botTokenConflicts } = await import('../instances/bot-token.js');
      const conflicts = await botTokenConflicts(options.home, ready);
      for (const [id, message] of conflicts) byId.set(id, { id, outcome: 'failed', code: 'EEXISTS', message });
      ready = ready.filter((paths) => !conflicts.has(paths.agent.id));
    }
    const results = await runFleetAction(ready, options, (manager, group) => manager[verb](group), verb === 'stop');
    for (const result of results) byId.set(result.id, result);
    return agents.map((paths) => byId.get(paths.agent.id)!);
  });
}

export interface StatusRow extends Omit<ProcessInfo, 'manager'> {
  manager?: ProcessManagerName;
  /** Why the state is unknown (settings unreadable, manager unreachable), and its error code. */
  problem?: string;
  code?: string;
}

/**
 * State of every given agent, one manager connection per manager. Never throws for a
 * manager that is missing or refuses: its agents are `unknown`, with the reason.
 */
export async function fleetStatus(agents: AgentPaths[], options: OpenOptions): Promise<StatusRow[]> {
  const { groups, unreadable } = await groupByManager(agents, true, options.env);
  const byId = new Map<string, StatusRow>();
  for (const { paths, error } of unreadable) byId.set(paths.agent.id, { id: paths.agent.id, state: 'unknown', problem: describeError(error), code: codeOf(error) });
  await Promise.all(
    groups.map(async (group) => {
      try {
        const infos = await withProcessManager(group.manager, options, (manager) => manager.status(group.agents));
        for (const info of infos) byId.set(info.id, info);
      } catch (error) {
        for (const paths of group.agents) byId.set(paths.agent.id, { id: paths.agent.id, manager: group.manager, state: 'unknown', problem: describeError(error), code: codeOf(error) });
      }
    }),
  );
  return Promise.all(agents.map((paths) => withAgentProblem(paths, byId.get(paths.agent.id) ?? { id: paths.agent.id, state: 'unknown' })));
}

/**
 * A restore killed half-way is the agent's problem whatever its state; a running instance
 * that says it cannot answer (awaiting approval, key refused, out of credits) has that.
 */
async function withAgentProblem(paths: AgentPaths, row: StatusRow): Promise<StatusRow> {
  const interrupted = existsSync(swapJournalOf(paths)) ? await (await import('../instances/file-swap.js')).interruptedSwap(paths) : undefined;
  if (interrupted) return { ...row, problem: row.problem ? `${row.problem}; ${interrupted}` : interrupted };
  if (row.state !== 'online' || row.problem) return row;
  const section = readRuntimeState(paths.dir)?.sections.letta;
  return section && section.status !== 'ok' ? { ...row, problem: section.message } : row;
}

/**
 * Stops and forgets one agent's instance, whichever manager runs it (remove uses this
 * before it moves the folder). A missing manager is fine when nothing can be running
 * under it; settings that cannot be read fall back to asking PM2, the default.
 */
export async function stopAndUnregister(paths: AgentPaths, options: OpenOptions): Promise<void> {
  const { groups } = await groupByManager([paths]);
  const manager = groups[0]?.manager ?? 'pm2';
  await withProcessManager(manager, options, async (pm) => {
    try {
      const [result] = await pm.stop([paths]);
      if (result?.outcome === 'failed') throw new AnimusError((result.code as 'EPM') ?? 'EPM', `cannot stop ${paths.agent.id}: ${result.message ?? 'unknown error'}: nothing was removed`);
      await pm.unregister([paths]);
    } catch (error) {
      if (error instanceof AnimusError && error.code === 'ENOSYSTEMD') return;
      throw error;
    }
  });
}

export interface Activation {
  /** With --start: each agent's start result. */
  started?: ProcessActionResult[];
  /** Things that did not happen and why (systemd not running, units not installed). */
  warnings: string[];
}

/**
 * After a deploy: `--start` starts the agents (verified up); without it, agents under
 * systemd are enabled so the home's target starts them at boot. A missing systemd is a
 * warning here, not a failure: the folder is whole and can be started later.
 */
export async function activateDeployed(home: string, ids: string[], options: { start: boolean; env?: NodeJS.ProcessEnv }): Promise<Activation> {
  const agents = await Promise.all(ids.map((id) => requireAgent(home, id)));
  if (options.start) {
    // The agents exist now: a start that failed "with nothing changed" still left them deployed.
    const started = await runFleetVerb('start', agents, { home, env: options.env, command: 'deploy --start' });
    return {
      started: started.map((r) => (r.outcome === 'failed' && r.message ? { ...r, message: `${r.id} was deployed but not started: ${r.message.replace(/: nothing was changed;?/, ';')}` } : r)),
      warnings: [],
    };
  }
  const { groups } = await groupByManager(agents);
  const systemd = groups.find((g) => g.manager === 'systemd');
  if (!systemd) return { warnings: [] };
  const { SystemdManager } = await import('./systemd.js');
  try {
    await new SystemdManager({ home, env: options.env }).enable(systemd.agents);
    return { warnings: [] };
  } catch (error) {
    return { warnings: [`${systemd.agents.map((a) => a.agent.id).join(', ')} not enabled under systemd: ${describeError(error)}`] };
  }
}

/** Fills `state` of `animus list` rows; rows with problems, and managers that cannot answer, stay blank. */
export async function fillStates(home: string, entries: Array<{ id: string; problems: string[]; processManager?: string; state?: string }>, env?: NodeJS.ProcessEnv): Promise<void> {
  try {
    const healthy = entries.filter((e) => e.problems.length === 0 && e.processManager);
    const agents = (await Promise.all(healthy.map((e) => requireAgent(home, e.id).catch(() => undefined)))).filter((a): a is AgentPaths => a !== undefined);
    const rows = await fleetStatus(agents, { home, env });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const entry of entries) {
      const row = byId.get(entry.id);
      if (row && !row.problem) entry.state = row.state;
    }
  } catch {
    // A manager that cannot answer leaves the column blank.
  }
}

function codeOf(error: unknown): string {
  return error instanceof AnimusError ? error.code : 'EINTERNAL';
}
