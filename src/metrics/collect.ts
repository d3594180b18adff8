import { availableParallelism } from 'node:os';
import { describeError } from '../core/errors.js';
import { runInWorker, WORKERS_AVAILABLE } from '../core/worker.js';
import type { AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { agentDbPath } from '../instances/db-path.js';
import { fleetStatus, resolveTargets, type StatusRow } from '../process/fleet.js';
import { databaseKey, SETTLE_MS } from '../health/check-cache.js';
import { statFile } from '../health/folder-stats.js';
import { metricsFromDigest, readDatabaseDigest, type DatabaseDigest } from './database-metrics.js';
import type { MetricsCache } from './metrics-cache.js';
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
  /** Digests of databases that did not change since they were read (updated in place). */
  cache?: MetricsCache;
  /** Forget cached agents not in this run (default: when the whole home is read). */
  pruneCache?: boolean;
  /** Databases written less than this long ago are read but not remembered (default SETTLE_MS; tests set 0). */
  settleMs?: number;
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
    readDatabases(agents, now, options),
    options.processes ?? fleetStatus(agents, { home: options.home, env: options.env }),
    Promise.all(agents.map((paths) => readSettings(paths).then((s) => s.agent.name, () => ''))),
  ]);
  const byId = new Map(processes.map((row) => [row.id, row]));
  return agents.map((paths, i) => toAgentMetrics(paths, names[i]!, databases[i]!, byId.get(paths.agent.id), now));
}

type DatabaseOutcome = { metrics: DatabaseMetrics } | { problem: string };
type DigestOutcome = { digest: DatabaseDigest } | { problem: string };

/** Below this many databases to read, a thread's start-up (loading the bundle and SQLite) costs more than it saves. */
const DATABASES_PER_THREAD = 150;

/**
 * Each database is stat'ed here; one whose identity matches its cached digest is not
 * opened. The others are read, in worker threads when there are many (SQLite is
 * synchronous): contiguous slices, this thread reading the first. Workers need the
 * built CLI (core/worker.ts); under a TypeScript loader (tests) all runs here.
 */
async function readDatabases(agents: AgentPaths[], now: number, options: CollectOptions): Promise<DatabaseOutcome[]> {
  const cache = options.cache;
  const settledBefore = now - (options.settleMs ?? SETTLE_MS);
  const outcomes: DatabaseOutcome[] = new Array(agents.length);
  const misses: Array<{ index: number; path: string; key?: { key: string; settled: boolean } }> = [];
  agents.forEach((paths, index) => {
    let path: string;
    try {
      // The database the runtime uses (DB_PATH inside the folder, or animus.db), never through a link.
      path = agentDbPath(paths);
    } catch (error) {
      outcomes[index] = { problem: describeError(error) };
      return;
    }
    const key = cache ? databaseKey(statFile(path), statFile(`${path}-wal`), settledBefore) : undefined;
    const hit = key && cache?.get(paths.agent.id);
    if (hit && hit.key === key.key && now <= hit.digest.validUntil && now >= hit.digest.readAt) outcomes[index] = { metrics: metricsFromDigest(hit.digest, now) };
    else misses.push({ index, path, key });
  });
  const digests = await readDigests(misses.map((m) => m.path), now, options.threads);
  misses.forEach((miss, i) => {
    const read = digests[i]!;
    if ('problem' in read) {
      outcomes[miss.index] = read;
      cache?.delete(agents[miss.index]!.agent.id);
      return;
    }
    outcomes[miss.index] = { metrics: metricsFromDigest(read.digest, now) };
    if (cache && miss.key?.settled) cache.set(agents[miss.index]!.agent.id, { key: miss.key.key, digest: read.digest });
  });
  if (cache) {
    // Forget agents that are gone, so the cache does not grow forever (only when the whole home was read).
    if (options.pruneCache ?? (!options.ids?.length && !options.agents)) {
      const present = new Set(agents.map((a) => a.agent.id));
      for (const id of cache.keys()) if (!present.has(id)) cache.delete(id);
    }
  }
  return outcomes;
}

async function readDigests(paths: string[], now: number, threads?: number): Promise<DigestOutcome[]> {
  const limit = Math.min(threads ?? (WORKERS_AVAILABLE ? availableParallelism() : 1), 4);
  const count = Math.max(1, Math.min(limit, Math.floor(paths.length / DATABASES_PER_THREAD)));
  if (count === 1 || !WORKERS_AVAILABLE) return readSlice(paths, now);
  const size = Math.ceil(paths.length / count);
  const slices = Array.from({ length: count }, (_, i) => paths.slice(i * size, (i + 1) * size));
  const [own, ...others] = slices;
  const theirs = Promise.all(others.map((slice) => runInWorker<DigestOutcome[]>('metrics', { animusMetricsJob: { paths: slice, now } })));
  // Handled now, thrown below: a worker that fails while this thread reads is not an unhandled rejection.
  theirs.catch(() => {});
  const local = readSlice(own!, now);
  return [...local, ...(await theirs).flat()];
}

function readSlice(paths: string[], now: number): DigestOutcome[] {
  return paths.map((path) => {
    try {
      return { digest: readDatabaseDigest(path, now) };
    } catch (error) {
      return { problem: describeError(error) };
    }
  });
}

/** Entry of a metrics worker thread (see readDigests). */
export async function readDigestsWorker(): Promise<void> {
  const { parentPort, workerData } = await import('node:worker_threads');
  const job = (workerData as { animusMetricsJob?: { paths: string[]; now: number } } | undefined)?.animusMetricsJob;
  if (!job || !parentPort) return;
  parentPort.postMessage({ result: readSlice(job.paths, job.now) });
}


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
