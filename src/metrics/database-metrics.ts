import type { Database } from '../store/database.js';
import { hasColumn, openDatabase } from '../store/database.js';
import { schemaVersion } from '../store/migrations.js';
import { parseSqliteTime } from '../health/database-probe.js';
import { percentileOfSorted } from './percentile.js';
import { WINDOW_MS, type DatabaseMetrics, type QueueMetrics, type RequestCounts, type WindowMetrics, type WindowName } from './types.js';

/** Outcomes of an agent request that are not failures: a reply, or still under way. */
const NOT_FAILED = new Set(['replied', 'sending', 'running', 'awaiting_approval']);

/** What an agent's database can hold, read from its columns (a Broca-made file has none of animus's). */
interface Capabilities {
  timing: boolean;
  delivery: boolean;
  requests: boolean;
}

/**
 * Every number of an agent's database, on a read-only handle (no migration, no pragma
 * that writes), over the last hour, the last 24 h and all time. Time columns are read
 * through SQLite's unixepoch(), which takes both the `YYYY-MM-DD HH:MM:SS` Broca and
 * the runtime write and the ISO text Telegram's dates are stored as.
 */
export function readDatabaseMetrics(path: string, now: number = Date.now()): DatabaseMetrics {
  const db = openDatabase(path, { readonly: true });
  try {
    return measure(db, now);
  } finally {
    db.close();
  }
}

export function measure(db: Database, now: number): DatabaseMetrics {
  const can: Capabilities = {
    timing: hasColumn(db, 'messages', 'latency_ms'),
    delivery: hasColumn(db, 'messages', 'delivered_at'),
    requests: db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_requests'").pluck().get() === 1,
  };
  const since = { '1h': Math.floor((now - WINDOW_MS['1h']) / 1000), '24h': Math.floor((now - WINDOW_MS['24h']) / 1000) };
  const messages = messageCounts(db, can, since);
  const latencies = can.timing ? latencyList(db, can) : undefined;
  const requests = can.requests ? requestCounts(db, now) : undefined;
  const window = (name: WindowName): WindowMetrics => {
    const from = name === 'all' ? -Infinity : since[name];
    const row = (key: string) => Number(messages[`${key}_${name}`] ?? 0);
    const latency = latencies?.filter((l) => l.at >= from).map((l) => l.ms);
    return {
      messagesIn: row('in'),
      messagesOut: row('out'),
      latencyMs: latency
        ? { count: latency.length, p50: percentileOfSorted(latency, 50), p95: percentileOfSorted(latency, 95), p99: percentileOfSorted(latency, 99) }
        : null,
      tokens: can.timing ? { prompt: row('prompt'), completion: row('completion'), total: row('total') } : null,
      requests: requests ? requests[name] : null,
      deliveryFailures: can.delivery ? row('dfail') : null,
    };
  };
  return { schemaVersion: schemaVersion(db), windows: { '1h': window('1h'), '24h': window('24h'), all: window('all') }, queue: queueMetrics(db, now) };
}

/** One pass over messages: counts, tokens and delivery failures for the three windows. */
function messageCounts(db: Database, can: Capabilities, since: Record<'1h' | '24h', number>): Record<string, number | null> {
  const replied = "agent_response IS NOT NULL AND agent_response != ''";
  const outTime = can.delivery ? 'unixepoch(COALESCE(delivered_at, timestamp))' : 'unixepoch(timestamp)';
  const columns = [`unixepoch(timestamp) AS t`, `${outTime} AS o`, `(${replied}) AS r`];
  if (can.timing) columns.push('prompt_tokens AS pt', 'completion_tokens AS ct', 'total_tokens AS tt');
  if (can.delivery) columns.push("(delivery_status = 'failed') AS df");
  const sums: string[] = [];
  for (const [name, from] of [['all', null], ['1h', since['1h']], ['24h', since['24h']]] as const) {
    const inWindow = (time: string) => (from === null ? '1' : `${time} >= ${from}`);
    sums.push(`COUNT(CASE WHEN ${inWindow('t')} THEN 1 END) AS in_${name}`, `COUNT(CASE WHEN r AND ${inWindow('o')} THEN 1 END) AS out_${name}`);
    if (can.timing) {
      for (const [key, column] of [['prompt', 'pt'], ['completion', 'ct'], ['total', 'tt']]) sums.push(`TOTAL(CASE WHEN ${inWindow('o')} THEN ${column} END) AS ${key}_${name}`);
    }
    if (can.delivery) sums.push(`COUNT(CASE WHEN df AND ${inWindow('o')} THEN 1 END) AS dfail_${name}`);
  }
  return db.prepare(`SELECT ${sums.join(', ')} FROM (SELECT ${columns.join(', ')} FROM messages)`).get() as Record<string, number | null>;
}

/** Every reply latency with its time, sorted by latency, so each window's slice stays sorted. */
function latencyList(db: Database, can: Capabilities): Array<{ ms: number; at: number }> {
  const at = can.delivery ? 'unixepoch(COALESCE(delivered_at, timestamp))' : 'unixepoch(timestamp)';
  return (db.prepare(`SELECT latency_ms AS ms, COALESCE(${at}, 0) AS at FROM messages WHERE latency_ms IS NOT NULL ORDER BY latency_ms`).all() as Array<{ ms: number; at: number }>);
}

/** agent_requests grouped by outcome, kind and stop reason, with the count in each window (started_at is in ms). */
function requestCounts(db: Database, now: number): Record<WindowName, RequestCounts> {
  const rows = db
    .prepare(
      `SELECT outcome, error_kind AS kind, stop_reason AS stop, COUNT(*) AS n_all,
              COUNT(CASE WHEN started_at >= ? THEN 1 END) AS n_1h, COUNT(CASE WHEN started_at >= ? THEN 1 END) AS n_24h
       FROM agent_requests GROUP BY outcome, error_kind, stop_reason`,
    )
    .all(now - WINDOW_MS['1h'], now - WINDOW_MS['24h']) as Array<{ outcome: string | null; kind: string | null; stop: string | null; n_all: number; n_1h: number; n_24h: number }>;
  const empty = (): RequestCounts => ({ attempts: 0, replied: 0, retries: 0, failures: 0, failuresByKind: {}, stopReasons: {} });
  const result: Record<WindowName, RequestCounts> = { '1h': empty(), '24h': empty(), all: empty() };
  for (const row of rows) {
    for (const name of ['1h', '24h', 'all'] as const) {
      const n = row[`n_${name}`];
      if (n === 0) continue;
      const counts = result[name];
      counts.attempts += n;
      if (row.outcome === 'replied') counts.replied += n;
      if (row.outcome === 'retry') counts.retries += n;
      // An outcome this animus does not know yet counts as a failure: it is not a reply.
      if (!NOT_FAILED.has(row.outcome ?? '')) {
        counts.failures += n;
        const kind = row.kind ?? 'unknown';
        counts.failuresByKind[kind] = (counts.failuresByKind[kind] ?? 0) + n;
      }
      if (row.stop && row.stop !== 'end_turn') counts.stopReasons[row.stop] = (counts.stopReasons[row.stop] ?? 0) + n;
    }
  }
  return result;
}

function queueMetrics(db: Database, now: number): QueueMetrics {
  const rows = db
    .prepare("SELECT status, COUNT(*) AS n, COUNT(CASE WHEN attempts > 0 THEN 1 END) AS tried FROM queue WHERE status IN ('pending', 'processing', 'failed') GROUP BY status")
    .all() as Array<{ status: string; n: number; tried: number }>;
  const of = (status: string) => rows.find((r) => r.status === status);
  const oldest = db.prepare("SELECT timestamp FROM queue WHERE status = 'pending' ORDER BY id LIMIT 1").pluck().get() as string | null | undefined;
  const oldestMs = oldest ? parseSqliteTime(oldest) : undefined;
  return {
    pending: of('pending')?.n ?? 0,
    processing: of('processing')?.n ?? 0,
    failed: of('failed')?.n ?? 0,
    retrying: of('pending')?.tried ?? 0,
    oldestPendingAgeS: oldestMs === undefined ? null : Math.max(0, Math.round((now - oldestMs) / 1000)),
  };
}
