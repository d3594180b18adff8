import { fleetStatus, resolveTargets, type StatusRow } from '../process/fleet.js';
import { collectMetrics } from './collect.js';
import type { MetricsCache } from './metrics-cache.js';
import type { DatabaseMetrics } from './types.js';

/** A row of `animus status`: the process as before, plus the agent's name and every metric. */
export interface StatusWithMetrics extends StatusRow {
  name: string;
  /** The database's numbers; null when it could not be read (see metricsProblem). */
  metrics: DatabaseMetrics | null;
  metricsProblem?: string;
}

/** Process states and metrics of the given agents (all of the home's when none), one manager call per manager. */
export async function statusWithMetrics(home: string, ids: string[], env?: NodeJS.ProcessEnv, cache?: MetricsCache): Promise<StatusWithMetrics[]> {
  const agents = await resolveTargets(home, ids, ids.length === 0);
  const processes = await fleetStatus(agents, { home, env });
  const metrics = await collectMetrics({ home, agents, env, processes, cache, pruneCache: ids.length === 0 });
  return processes.map((row, i) => {
    const m = metrics[i]!;
    return { ...row, name: m.name, metrics: m.database ?? null, ...(m.problem ? { metricsProblem: m.problem } : {}) };
  });
}
