import { hasColumn, openDatabase } from '../store/database.js';
import { percentileOfSorted } from './percentile.js';

/**
 * An agent's last 24 hours, hour by hour, for the dashboard's charts. Each array has
 * one value per hour, oldest first; `hours` holds each hour's start (Unix seconds).
 * Latency and tokens are null arrays on a database that does not keep them.
 */
export interface HourlySeries {
  hours: number[];
  messagesIn: number[];
  messagesOut: number[];
  latencyP50Ms: Array<number | null> | null;
  latencyP95Ms: Array<number | null> | null;
  tokens: number[] | null;
}

export const SERIES_HOURS = 24;

export function readHourlySeries(path: string, now: number = Date.now()): HourlySeries {
  const db = openDatabase(path, { readonly: true });
  try {
    const timing = hasColumn(db, 'messages', 'latency_ms');
    const delivery = hasColumn(db, 'messages', 'delivered_at');
    // Whole hours: the current one is the last bucket.
    const end = Math.floor(now / 3_600_000) * 3600 + 3600;
    const start = end - SERIES_HOURS * 3600;
    const hours = Array.from({ length: SERIES_HOURS }, (_, i) => start + i * 3600);
    const zeros = () => new Array<number>(SERIES_HOURS).fill(0);
    const messagesIn = zeros();
    const messagesOut = zeros();
    const tokens = timing ? zeros() : null;
    const latencies: number[][] = Array.from({ length: SERIES_HOURS }, () => []);
    const outTime = delivery ? 'unixepoch(COALESCE(delivered_at, timestamp))' : 'unixepoch(timestamp)';
    const rows = db
      .prepare(
        `SELECT unixepoch(timestamp) AS t, ${outTime} AS o, (agent_response IS NOT NULL AND agent_response != '') AS r${timing ? ', latency_ms AS l, total_tokens AS tt' : ''}
         FROM messages WHERE unixepoch(timestamp) >= ? OR ${outTime} >= ?`,
      )
      .all(start, start) as Array<{ t: number | null; o: number | null; r: number; l?: number | null; tt?: number | null }>;
    const bucket = (time: number | null) => (time === null || time < start || time >= end ? -1 : Math.floor((time - start) / 3600));
    for (const row of rows) {
      const i = bucket(row.t);
      if (i >= 0) messagesIn[i]!++;
      const j = bucket(row.o);
      if (j < 0 || !row.r) continue;
      messagesOut[j]!++;
      if (tokens && row.tt) tokens[j]! += row.tt;
      if (row.l !== null && row.l !== undefined) latencies[j]!.push(row.l);
    }
    const sorted = latencies.map((list) => list.sort((a, b) => a - b));
    return {
      hours,
      messagesIn,
      messagesOut,
      latencyP50Ms: timing ? sorted.map((list) => percentileOfSorted(list, 50)) : null,
      latencyP95Ms: timing ? sorted.map((list) => percentileOfSorted(list, 95)) : null,
      tokens,
    };
  } finally {
    db.close();
  }
}
