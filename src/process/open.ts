import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ProcessManagerName } from '../config/settings.js';
import { AnimusError, describeError } from '../core/errors.js';
import type { AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { dropInPath, unitDirectory } from './systemd-units.js';
import type { ProcessActionResult, ProcessManager } from './types.js';

export interface OpenOptions {
  home: string;
  env?: NodeJS.ProcessEnv;
  /** systemd only: the user's manager (default) or the system's. */
  scope?: 'user' | 'system';
  /** PM2 only: how long a started process must stay up to count as started. */
  startGraceMs?: number;
}

/** The manager by name; each module is imported only when asked for (PM2 is heavy). */
export async function openProcessManager(name: ProcessManagerName, options: OpenOptions): Promise<ProcessManager> {
  if (name === 'pm2') {
    const { Pm2Manager } = await import('./pm2.js');
    return new Pm2Manager({ env: options.env, home: options.home, startGraceMs: options.startGraceMs });
  }
  if (name === 'kubernetes') {
    const { KubernetesManager } = await import('./kubernetes.js');
    return new KubernetesManager({ env: options.env });
  }
  const { SystemdManager } = await import('./systemd.js');
  return new SystemdManager({ home: options.home, env: options.env, scope: options.scope });
}

/** Runs `work` with a manager that is closed afterwards whatever happens. */
export async function withProcessManager<T>(name: ProcessManagerName, options: OpenOptions, work: (manager: ProcessManager) => Promise<T>): Promise<T> {
  const manager = await openProcessManager(name, options);
  try {
    return await work(manager);
  } finally {
    await manager.close();
  }
}

export interface FleetGroup {
  manager: ProcessManagerName;
  agents: AgentPaths[];
}

/**
 * Groups agents by `settings.process_manager`; agents whose settings cannot be read
 * are returned apart, unless `byName`: stop and status need only the process's name
 * (animus-<uuid>, animus-<home hash>@<uuid>), so such an agent goes to the manager that has
 * it registered (systemd when its unit is there, else PM2, the default).
 */
export async function groupByManager(agents: AgentPaths[], byName = false, env: NodeJS.ProcessEnv = process.env): Promise<{ groups: FleetGroup[]; unreadable: Array<{ paths: AgentPaths; error: unknown }> }> {
  const groups = new Map<ProcessManagerName, AgentPaths[]>();
  const unreadable: Array<{ paths: AgentPaths; error: unknown }> = [];
  const settings = await Promise.all(agents.map((paths) => readSettings(paths).then((s) => ({ ok: true as const, s }), (error: unknown) => ({ ok: false as const, error }))));
  const add = (manager: ProcessManagerName, paths: AgentPaths) => {
    const list = groups.get(manager) ?? [];
    list.push(paths);
    groups.set(manager, list);
  };
  agents.forEach((paths, i) => {
    const read = settings[i]!;
    if (read.ok) add(read.s.process_manager, paths);
    else if (byName) add(registeredUnder(paths, env), paths);
    else unreadable.push({ paths, error: read.error });
  });
  return { groups: [...groups].map(([manager, list]) => ({ manager, agents: list })), unreadable };
}

/** systemd when the agent's drop-in exists in the user's or the system's unit folder; PM2 otherwise. */
function registeredUnder(paths: AgentPaths, env: NodeJS.ProcessEnv): ProcessManagerName {
  return (['user', 'system'] as const).some((scope) => existsSync(dropInPath(unitDirectory(scope, env), dirname(paths.dir), paths.agent.uuid))) ? 'systemd' : 'pm2';
}

/**
 * One action over a set of agents that may use different managers: exactly one
 * connection per manager, always closed. Results keep the input order; an agent whose
 * manager is missing or whose settings are unreadable gets a failed result, the
 * others still run.
 */
export async function runFleetAction(
  agents: AgentPaths[],
  options: OpenOptions,
  action: (manager: ProcessManager, agents: AgentPaths[]) => Promise<ProcessActionResult[]>,
  byName = false,
): Promise<ProcessActionResult[]> {
  const { groups, unreadable } = await groupByManager(agents, byName, options.env);
  const byId = new Map<string, ProcessActionResult>();
  for (const { paths, error } of unreadable) byId.set(paths.agent.id, { id: paths.agent.id, outcome: 'failed', message: describeError(error), code: codeOf(error) });
  for (const group of groups) {
    try {
      const results = await withProcessManager(group.manager, options, (manager) => action(manager, group.agents));
      for (const result of results) byId.set(result.id, result);
    } catch (error) {
      for (const paths of group.agents) byId.set(paths.agent.id, { id: paths.agent.id, outcome: 'failed', message: describeError(error), code: codeOf(error) });
    }
  }
  return agents.map((paths) => byId.get(paths.agent.id)!);
}

function codeOf(error: unknown): string | undefined {
  return error instanceof AnimusError ? error.code : undefined;
}
