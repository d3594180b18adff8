import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { runInWorker, WORKERS_AVAILABLE } from '../core/worker.js';
import { parseAgentId, type AgentId } from '../core/agent-id.js';
import { AnimusError, describeError } from '../core/errors.js';
import { runPool } from '../core/pool.js';
import type { ProcessManagerName } from '../config/settings.js';
import { agentPaths, DB_FILE, type AgentPaths } from '../home/layout.js';
import { scanAgentFolders } from '../instances/registry.js';
import { agentsWithSwapJournal, checkAgentFolder, checkProcess, type FolderHealth } from './agent-checks.js';
import { checkLetta, LETTA_CHECK_TIMEOUT_MS } from './letta-check.js';
import { databaseKey, loadHealthCache, recall, remember, saveHealthCache, SETTLE_MS, type HealthCache } from './check-cache.js';
import { statFile, WAL_FILE } from './folder-stats.js';
import { askProcesses, probeProcesses, type ManagerOpener, type ProcessProbe } from './process-probe.js';
import { DEFAULT_THRESHOLDS, type AgentHealth, type HealthReport, type HealthThresholds } from './types.js';

export interface HealthOptions {
  home: string;
  /** Agent ids to check; all agent folders of the home when empty. */
  ids?: string[];
  thresholds?: Partial<HealthThresholds>;
  /** Opens a process manager; without one every process check is `unknown`. */
  openManager?: ManagerOpener;
  /** Reuse what was read from files that did not change since the last run (default true). */
  cache?: boolean;
  /** Files changed less than this long ago are read but not remembered (default SETTLE_MS; tests set 0). */
  settleMs?: number;
  /** Threads sharing the folder checks; default: one per core for large homes, 1 in tests and small homes. */
  threads?: number;
  now?: () => number;
  /** Do not call Letta (the letta check reports what the runtime recorded only). */
  offline?: boolean;
  /** The letta check's call timeout (default LETTA_CHECK_TIMEOUT_MS). */
  lettaTimeoutMs?: number;
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

  const cache = options.cache === false ? undefined : loadHealthCache(options.home);
  const settledBefore = started - (options.settleMs ?? SETTLE_MS);
  // PM2 (the default manager) is asked about every agent while the folders are checked:
  // listing a thousand processes keeps its daemon busy for a tenth of a second, which
  // overlaps with the checks instead of following them. Only the agents the folders
  // show under PM2 take its answer (see below).
  const early = options.openManager ? (await askProcesses(options.home, new Map([['pm2', targetPaths(options.home, targets)]]), options.openManager)).answer : undefined;
  const folders = await checkFolders({ home: options.home, targets, thresholds, now: now(), cache, settledBefore }, options.threads);
  if (cache) {
    const fresh = folders.flatMap((f) => ('memory' in f && f.memory ? [[f.health.id, f.memory] as const] : []));
    if (fresh.length > 0) {
      for (const [id, memory] of fresh) remember(cache, id, memory);
      // Forget agents that are gone, so the file does not grow forever.
      const present = new Set(options.ids?.length ? Object.keys(cache) : folders.map((f) => ('paths' in f ? f.health.id : f.id)));
      await saveHealthCache(options.home, Object.fromEntries(Object.entries(cache).filter(([id]) => present.has(id))));
    }
  }

  const groups = new Map<ProcessManagerName, AgentPaths[]>();
  for (const folder of folders) {
    if (!('paths' in folder)) continue;
    const name = folder.processManager ?? 'pm2';
    const group = groups.get(name);
    if (group) group.push(folder.paths);
    else groups.set(name, [folder.paths]);
  }
  // Live agents are asked of Letta while the process managers answer.
  const liveFolders = folders.filter((f): f is FolderHealth => 'paths' in f && f.health.facts.mode === 'live' && f.health.checks[0]?.status !== 'fail');
  const lettaChecks = runPool(liveFolders, 16, (f) => checkLetta(f.paths, { offline: options.offline === true, timeoutMs: options.lettaTimeoutMs ?? LETTA_CHECK_TIMEOUT_MS }));
  const processes = early ? await mergeProbes(early, groups, (rest) => probeProcesses(options.home, rest, options.openManager)) : await probeProcesses(options.home, groups, undefined);
  const letta = new Map((await lettaChecks).map((outcome, i) => [liveFolders[i]!.health.id, outcome.ok ? outcome.value : { name: 'letta' as const, status: 'unknown' as const, message: describeError(outcome.error) }]));

  const agents = folders.map((folder) => {
    if (!('paths' in folder)) return folder;
    const health = folder.health;
    if (health.checks[0]?.status !== 'fail' || !health.checks[0].message.startsWith('missing')) {
      const managerName = folder.processManager ?? 'pm2';
      const manager = processes.managers.find((m) => m.name === managerName);
      const info = processes.states.get(health.id);
      health.facts.processState = info?.state ?? 'unknown';
      health.facts.pid = info?.pid ?? null;
      const check = checkProcess(info, manager?.available ? undefined : `${managerName}: ${manager?.message ?? 'not available'}`);
      // Keep the documented order: process sits before queue and reply.
      const at = health.checks.findIndex((c) => c.name === 'queue');
      const lettaCheck = letta.get(health.id);
      health.checks.splice(at === -1 ? health.checks.length : at, 0, check, ...(lettaCheck ? [lettaCheck] : []));
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

function targetPaths(home: string, targets: Array<{ agent?: AgentId }>): AgentPaths[] {
  return targets.flatMap((target) => (target.agent ? [agentPaths(home, target.agent)] : []));
}

/** PM2's early answer for the agents that are PM2's, the other managers asked now; managers no agent uses are not reported. */
async function mergeProbes(early: Promise<ProcessProbe>, groups: Map<ProcessManagerName, AgentPaths[]>, probeRest: (rest: Map<ProcessManagerName, AgentPaths[]>) => Promise<ProcessProbe>): Promise<ProcessProbe> {
  const rest = new Map([...groups].filter(([name]) => name !== 'pm2'));
  const [pm2, others] = await Promise.all([early, probeRest(rest)]);
  const probe: ProcessProbe = { managers: others.managers, states: others.states };
  for (const paths of groups.get('pm2') ?? []) {
    const state = pm2.states.get(paths.agent.id);
    if (state) probe.states.set(paths.agent.id, state);
  }
  if (groups.has('pm2')) probe.managers = [...pm2.managers, ...probe.managers].sort((a, b) => a.name.localeCompare(b.name));
  return probe;
}

interface FolderJob {
  home: string;
  targets: Array<{ name: string; agent?: AgentId }>;
  thresholds: HealthThresholds;
  now: number;
  cache?: HealthCache;
  settledBefore: number;
}

/** Agents checked between two turns of the event loop. */
const YIELD_EVERY = 8;
/** Below this many agents a thread's start-up costs more than it saves. */
const AGENTS_PER_THREAD = 150;
/** Agents whose databases are looked at to estimate how many changed. */
const THREAD_SAMPLE = 64;

/**
 * The folder checks are CPU-bound (SQLite's quick_check, parsing) and synchronous, so
 * a large home is split across worker threads, one per core, each checking a
 * contiguous slice while this thread checks the first. Workers need the built CLI
 * (core/worker.ts); under a TypeScript loader (tests) it all runs here.
 */
async function checkFolders(job: FolderJob, threads?: number): Promise<Array<FolderHealth | AgentHealth>> {
  // Only databases that changed since the last run cost real work: size the threads by those.
  const cache = job.cache;
  const limit = Math.min(threads ?? (WORKERS_AVAILABLE ? availableParallelism() : 1), 8);
  if (limit <= 1 || !WORKERS_AVAILABLE || job.targets.length < 2 * AGENTS_PER_THREAD) return checkSlice(job);
  // How many databases changed since the last run, estimated from an even sample: the
  // stats of every agent up front would be kept alive until its check, for the GC to copy.
  const step = Math.max(1, Math.floor(job.targets.length / THREAD_SAMPLE));
  const root = resolve(job.home);
  let sampled = 0;
  let changed = 0;
  for (let i = 0; i < job.targets.length; i += step) {
    const name = job.targets[i]!.name;
    sampled++;
    if ((cache && recall(cache, name)?.db?.key) !== databaseKey(statFile(`${root}/${name}/${DB_FILE}`), statFile(`${root}/${name}/${WAL_FILE}`), job.settledBefore)?.key) changed++;
  }
  const costly = Math.round((changed / sampled) * job.targets.length);
  const count = Math.max(1, Math.min(limit, Math.ceil(costly / AGENTS_PER_THREAD)));
  if (count === 1) return checkSlice(job);
  const size = Math.ceil(job.targets.length / count);
  const slices = Array.from({ length: count }, (_, i) => job.targets.slice(i * size, (i + 1) * size));
  const [own, ...others] = slices;
  const pick = <T>(record: Record<string, T> | undefined, targets: FolderJob['targets']) => record && Object.fromEntries(targets.flatMap((t) => (t.name in record ? [[t.name, record[t.name]!]] : [])));
  const remote = others.map((targets) =>
    runInWorker<Array<FolderHealth | AgentHealth>>('health', { animusHealthJob: { ...job, targets, cache: pick(cache, targets) } }),
  );
  // Handled now, thrown below: a worker that fails while this thread works is not an unhandled rejection.
  const theirs = Promise.all(remote);
  theirs.catch(() => {});
  const local = await checkSlice({ ...job, targets: own! });
  return [...local, ...(await theirs).flat()];
}

async function checkSlice(job: FolderJob): Promise<Array<FolderHealth | AgentHealth>> {
  const context = { thresholds: job.thresholds, now: job.now, cache: job.cache, settledBefore: job.settledBefore, origins: new Map<string, string | undefined>(), swapJournals: agentsWithSwapJournal(job.home) };
  // The checks are synchronous file calls that the pool's workers chain through microtasks
  // alone: every few agents all of them wait at one gate for a turn of the event loop, so
  // what the process managers were asked meanwhile (PM2 loading, connecting, answering)
  // goes on during the checks instead of after them.
  let gate: Promise<void> | undefined;
  const outcomes = await runPool<FolderJob['targets'][number], FolderHealth | AgentHealth>(job.targets, 16, async (target, index) => {
    if (index % YIELD_EVERY === YIELD_EVERY - 1) {
      gate ??= new Promise((resolve) =>
        setImmediate(() => {
          gate = undefined;
          resolve();
        }),
      );
    }
    if (gate) await gate;
    return target.agent ? checkAgentFolder(job.home, target.agent, context) : invalidFolder(job.home, target.name);
  });
  return outcomes.map((outcome, i): FolderHealth | AgentHealth => {
    if (outcome.ok) return outcome.value;
    // A check that threw is a bug or an I/O fault on that folder: report it on the agent, keep the rest.
    return unreadable(job.home, job.targets[i]!.name, describeError(outcome.error));
  });
}

/** Entry of a health worker thread (see checkFolders). */
export async function runHealthWorker(): Promise<void> {
  const { parentPort, workerData } = await import('node:worker_threads');
  const job = (workerData as { animusHealthJob?: FolderJob } | undefined)?.animusHealthJob;
  if (!job || !parentPort) return;
  parentPort.postMessage({ result: await checkSlice(job) });
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
