import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAgentId, type AgentId } from '../core/agent-id.js';
import { AnimusError, describeError } from '../core/errors.js';
import { runPool } from '../core/pool.js';
import type { ProcessManagerName } from '../config/settings.js';
import type { AgentPaths } from '../home/layout.js';
import { scanAgentFolders } from '../instances/registry.js';
import { checkAgentFolder, checkProcess, type FolderHealth } from './agent-checks.js';
import { probeProcesses, type ManagerOpener } from './process-probe.js';
import { DEFAULT_THRESHOLDS, type AgentHealth, type HealthReport, type HealthThresholds } from './types.js';

export interface HealthOptions {
  home: string;
  /** Agent ids to check; all agent folders of the home when empty. */
  ids?: string[];
  thresholds?: Partial<HealthThresholds>;
  /** Opens a process manager; without one every process check is `unknown`. */
  openManager?: ManagerOpener;
  /** Agents checked at once: their file reads overlap; the database reads run in turn. */
  concurrency?: number;
  now?: () => number;
}

/**
 * Checks every agent (or the given ones) in one process: folders concurrently,
 * process state with one call per process manager at the same time. Throws only
 * when health itself cannot run (no home, a bad id); an unhealthy agent is data.
 */
export async function runHealth(options: HealthOptions): Promise<HealthReport> {
  const started = Date.now();
  const now = options.now ?? Date.now;
  const thresholds = { ...DEFAULT_THRESHOLDS, ...options.thresholds };
  await assertHome(options.home);
  const targets = await resolveTargets(options.home, options.ids ?? []);

  const outcomes = await runPool<(typeof targets)[number], FolderHealth | AgentHealth>(targets, options.concurrency ?? 32, (target) =>
    target.agent ? checkAgentFolder(options.home, target.agent, thresholds, now()) : Promise.resolve(invalidFolder(options.home, target.name)),
  );
  const folders = outcomes.map((outcome, i): FolderHealth | AgentHealth => {
    if (outcome.ok) return outcome.value;
    // A check that threw is a bug or an I/O fault on that folder: report it on the agent, keep the rest.
    return unreadable(options.home, targets[i]!.name, describeError(outcome.error));
  });

  const groups = new Map<ProcessManagerName, AgentPaths[]>();
  for (const folder of folders) {
    if (!('paths' in folder)) continue;
    const name = folder.settings?.process_manager ?? 'pm2';
    groups.set(name, [...(groups.get(name) ?? []), folder.paths]);
  }
  const processes = await probeProcesses(options.home, groups, options.openManager);

  const agents = folders.map((folder) => {
    if (!('paths' in folder)) return folder;
    const health = folder.health;
    if (health.checks[0]?.status !== 'fail' || !health.checks[0].message.startsWith('missing')) {
      const managerName = folder.settings?.process_manager ?? 'pm2';
      const manager = processes.managers.find((m) => m.name === managerName);
      const info = processes.states.get(health.id);
      health.facts.processState = info?.state ?? 'unknown';
      health.facts.pid = info?.pid ?? null;
      const check = checkProcess(info, manager?.available ? undefined : `${managerName}: ${manager?.message ?? 'not available'}`);
      // Keep the documented order: process sits before queue and reply.
      const at = health.checks.findIndex((c) => c.name === 'queue');
      health.checks.splice(at === -1 ? health.checks.length : at, 0, check);
    }
    health.healthy = health.checks.every((check) => check.status !== 'fail');
    return health;
  });

  const unhealthy = agents.filter((a) => !a.healthy).length;
  return {
    home: options.home,
    checkedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    healthy: unhealthy === 0,
    summary: {
      agents: agents.length,
      healthy: agents.length - unhealthy,
      unhealthy,
      warnings: agents.filter((a) => a.checks.some((c) => c.status === 'warn')).length,
    },
    processManagers: processes.managers,
    agents,
  };
}

async function assertHome(home: string): Promise<void> {
  try {
    if ((await stat(home)).isDirectory()) return;
  } catch {
    // Below.
  }
  throw new AnimusError('ENOTFOUND', `the home ${home} does not exist: pass --home or set ANIMUS_HOME, or create it with \`animus init\``);
}

async function resolveTargets(home: string, ids: string[]): Promise<Array<{ name: string; agent?: AgentId }>> {
  if (ids.length === 0) return scanAgentFolders(home);
  const agents = ids.map(parseAgentId);
  for (const agent of agents) {
    try {
      if ((await stat(join(home, agent.id))).isDirectory()) continue;
    } catch {
      // Below.
    }
    throw new AnimusError('ENOAGENT', `no agent ${agent.id} in ${home}: run \`animus list\` to see the agents`);
  }
  return [...new Map(agents.map((a) => [a.id, { name: a.id, agent: a }])).values()];
}

function invalidFolder(home: string, name: string): AgentHealth {
  return unreadable(home, name, 'folder name is not agent-<uuid>: rename it to the Letta agent id or move it out of the home');
}

function unreadable(home: string, name: string, message: string): AgentHealth {
  return {
    id: name,
    dir: join(home, name),
    healthy: false,
    checks: [{ name: 'folder', status: 'fail', message }],
    facts: { mode: null, processManager: null, commit: null, dirty: null, behind: null, schemaVersion: null, logsBytes: null, processState: null, pid: null, queue: null, lastReplyAt: null },
  };
}
