import { availableParallelism } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../core/errors.js';
import { runInWorker } from '../core/worker.js';
import type { AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { agentDbPath } from '../instances/db-path.js';
import { fleetStatus, resolveTargets, type StatusRow } from '../process/fleet.js';
import { readDatabaseMetrics } from './database-metrics.js';
import type { AgentMetrics, DatabaseMetrics } from './types.js';

export interface CollectOptions {
  home: string;
  /** Agent ids; every agent of the home when empty. */
  ids?: string[];
  /** The agents, already resolved (instead of ids). */
  agents?: AgentPaths[];
  env?: NodeJS.ProcessEnv;
  now?: number;
  /** Threads reading databases; default one per core (at most 4) for large homes, 1 under a TypeScript loader. */
  threads?: number;
  /** Process rows already read (status reads them itself); asked for when absent. */
  processes?: StatusRow[];
}

/**
 * The metrics of every agent (or the given ones): each database read on its own
 * read-only handle, the process states from each manager in one call. Never throws
 * for one agent: an unreadable database or settings file is that agent's `problem`.
 */
export async function collectMetrics(options: CollectOptions): Promise<AgentMetrics[]> {
  const now = options.now ?? Date.now();
  const agents = options.agents ?? (await resolveTargets(options.home, options.ids ?? [], (options.ids ?? []).length === 0));
  const [databases, processes, names] = await Promise.all([
    readDatabases(agents, now, options.threads),
    options.processes ?? fleetStatus(agents, { home: options.home, env: options.env }),
    Promise.all(agents.map((paths) => readSettings(paths).then((s) => s.agent.name, () => ''))),
  ]);
  const byId = new Map(processes.map((row) => [row.id, row]));
  return agents.map((paths, i) => toAgentMetrics(paths, names[i]!, databases[i]!, byId.get(paths.agent.id), now));
}

type DatabaseOutcome = { metrics: DatabaseMetrics } | { problem: string };

function toAgentMetrics(paths: AgentPaths, name: string, database: DatabaseOutcome, row: StatusRow | undefined, now: number): AgentMetrics {
  return {
    id: paths.agent.id,
    name,
    collectedAt: new Date(now).toISOString(),
    ...('metrics' in database ? { database: database.metrics } : { problem: database.problem }),
    process: {
      manager: row?.manager,
      state: row?.state ?? 'unknown',
      pid: row?.pid,
      uptimeMs: row?.uptimeMs,
      restarts: row?.restarts,
      crashRestarts: row?.crashRestarts,
      rssBytes: row?.memoryBytes,
      cpuPercent: row?.cpuPercent,
      problem: row?.problem,
    },
  };
}

/** Below this many databases a thread's start-up (loading the bundle and SQLite) costs more than it saves. */
const DATABASES_PER_THREAD = 200;

/**
 * Reading a database is synchronous (SQLite in this thread), so a large home is split
 * into contiguous slices read by worker threads while this thread reads the first.
 * Workers load this same module from the built bundle; under a TypeScript loader
 * (tests) everything runs here.
 */
async function readDatabases(paths: AgentPaths[], now: number, threads?: number): Promise<DatabaseOutcome[]> {
  const bundled = import.meta.url.endsWith('.js');
  const limit = Math.min(threads ?? (bundled ? availableParallelism() : 1), 4);
  const count = Math.max(1, Math.min(limit, Math.floor(paths.length / DATABASES_PER_THREAD)));
  if (count === 1 || !bundled) return readSlice(paths, now);
  const size = Math.ceil(paths.length / count);
  const slices = Array.from({ length: count }, (_, i) => paths.slice(i * size, (i + 1) * size));
  const [own, ...others] = slices;
  const theirs = Promise.all(others.map((slice) => runInWorker<DatabaseOutcome[]>(import.meta.url, 'readDatabasesWorker', { animusMetricsJob: { paths: slice, now } })));
  // Handled now, thrown below: a worker that fails while this thread reads is not an unhandled rejection.
  theirs.catch(() => {});
  const local = readSlice(own!, now);
  return [...local, ...(await theirs).flat()];
}

function readSlice(agents: AgentPaths[], now: number): DatabaseOutcome[] {
  return agents.map((paths) => {
    try {
      // The database the runtime uses (DB_PATH inside the folder, or animus.db), never through a link.
      return { metrics: readDatabaseMetrics(agentDbPath(paths), now) };
    } catch (error) {
      return { problem: describeError(error) };
    }
  });
}

/** Entry of a metrics worker thread (see readDatabases). */
export function readDatabasesWorker(): void {
  const job = (workerData as { animusMetricsJob?: { paths: AgentPaths[]; now: number } } | undefined)?.animusMetricsJob;
  if (!job || !parentPort) return;
  parentPort.postMessage({ result: readSlice(job.paths, job.now) });
}
