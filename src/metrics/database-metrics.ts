import type { Database } from '../store/database.js';
import { hasColumn, openDatabase } from '../store/database.js';
import { schemaVersion } from '../store/migrations.js';
import { parseSqliteTime } from '../health/database-probe.js';
import { percentileOfSorted } from './percentile.js';
import { WINDOW_MS, type DatabaseMetrics, type LatencySummary, type RequestCounts, type WindowMetrics } from './types.js';

/** Outcomes of an agent request that are not failures: a reply, or still under way. */
const NOT_FAILED = new Set(['replied', 'sending', 'running', 'awaiting_approval']);

/** What an agent's database can hold, read from its columns (a Broca-made file has none of animus's). */
interface Capabilities {
  timing: boolean;
  delivery: boolean;
  requests: boolean;
}

/** A reply: [when (Unix s), latency ms, prompt, completion, total tokens, delivery failed 0/1]. */
type OutEvent = [number, number | null, number, number, number, number];
/** An agent request: [started (ms), outcome, error kind, stop reason]. */
type RequestEvent = [number, string | null, string | null, string | null];

/** A window's numbers when the database was read, and the events that leave it within the digest's life. */
interface WindowDigest {
  in: number;
  out: number;
  prompt: number;
  completion: number;
  total: number;
  deliveryFailures: number;
  /** Every reply latency in the window, ascending. */
  latencies: number[];
  requests: RequestCounts | null;
  leavingIn: number[];
  leavingOut: OutEvent[];
  leavingRequests: RequestEvent[];
}

/**
 * What is read from a database, in a form that holds still while the file does: the
 * all-time numbers, and for the last hour and 24 h their numbers at `readAt` plus the
 * events that leave them before `validUntil` (an event only ever leaves a window as
 * time passes; one entering it is a write, which changes the file and so its cache
 * key). Until then the windows are cut afresh at every scrape without opening the
 * file (see metrics-cache.ts); after it, the database is read again. JSON-safe, for
 * the cache and for worker threads, and small: no list of all events is kept.
 */
export interface DatabaseDigest {
  readAt: number;
  validUntil: number;
  schemaVersion: number;
  can: Capabilities;
  totals: { in: number; out: number; prompt: number; completion: number; total: number; deliveryFailures: number };
  allLatency: LatencySummary | null;
  requestsAll: RequestCounts | null;
  windows: Record<'1h' | '24h', WindowDigest>;
  queue: { pending: number; processing: number; failed: number; retrying: number; oldestPendingMs: number | null };
}

/** How long a digest serves: 5 to 15 minutes, spread so that a fleet read at once is not read again all at once. */
const DIGEST_LIFE_MS = 300_000;
const DIGEST_SPREAD_MS = 600_000;

/**
 * Every number of an agent's database, on a read-only handle (no migration, no pragma
 * that writes), over the last hour, the last 24 h and all time.
 */
export function readDatabaseMetrics(path: string, now: number = Date.now()): DatabaseMetrics {
  return metricsFromDigest(readDatabaseDigest(path, now), now);
}

export function readDatabaseDigest(path: string, now: number = Date.now()): DatabaseDigest {
  const db = openDatabase(path, { readonly: true });
  try {
    return digest(db, now);
  } finally {
    db.close();
  }
}

/**
 * Time columns are read through SQLite's unixepoch(), which takes both the
 * `YYYY-MM-DD HH:MM:SS` that Broca and the runtime write and the ISO text that
 * Telegram's dates are stored as. Rows come back as arrays (raw), not objects.
 */
function digest(db: Database, now: number): DatabaseDigest {
  const can: Capabilities = {
    timing: hasColumn(db, 'messages', 'latency_ms'),
    delivery: hasColumn(db, 'messages', 'delivered_at'),
    requests: db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_requests'").pluck().get() === 1,
  };
  const validUntil = now + DIGEST_LIFE_MS + Math.floor(Math.random() * DIGEST_SPREAD_MS);
  const since = Math.floor((now - WINDOW_MS['24h']) / 1000);
  const replied = "(agent_response IS NOT NULL AND agent_response != '')";
  const outTime = can.delivery ? 'unixepoch(COALESCE(delivered_at, timestamp))' : 'unixepoch(timestamp)';
  const totals = db
    .prepare(
      `SELECT COUNT(*), COUNT(CASE WHEN ${replied} THEN 1 END), ${can.timing ? 'TOTAL(prompt_tokens), TOTAL(completion_tokens), TOTAL(total_tokens), COUNT(latency_ms)' : '0, 0, 0, 0'},
              ${can.delivery ? "COUNT(CASE WHEN delivery_status = 'failed' THEN 1 END)" : '0'} FROM messages`,
    )
    .raw()
    .get() as number[];
  const latencyCount = totals[5]!;
  let allLatency: LatencySummary | null = null;
  if (can.timing) {
    // The three ranks straight from SQLite's sort: no list of every latency crosses into JavaScript.
    const at = db.prepare('SELECT latency_ms FROM messages WHERE latency_ms IS NOT NULL ORDER BY latency_ms LIMIT 1 OFFSET ?').pluck();
    const rank = (p: number) => (latencyCount === 0 ? null : (at.get(Math.min(latencyCount, Math.max(1, Math.ceil((p / 100) * latencyCount))) - 1) as number));
    allLatency = { count: latencyCount, p50: rank(50), p95: rank(95), p99: rank(99) };
  }
  const recentIn = db.prepare('SELECT t FROM (SELECT unixepoch(timestamp) AS t FROM messages) WHERE t >= ?').pluck().all(since) as number[];
  const outColumns = can.timing ? 'latency_ms, COALESCE(prompt_tokens, 0), COALESCE(completion_tokens, 0), COALESCE(total_tokens, 0)' : 'NULL, 0, 0, 0';
  const recentOut = db
    .prepare(`SELECT o, ${outColumns}, ${can.delivery ? "delivery_status = 'failed'" : '0'} FROM (SELECT *, ${outTime} AS o FROM messages WHERE ${replied}) WHERE o >= ?`)
    .raw()
    .all(since) as OutEvent[];
  let requestsAll: RequestCounts | null = null;
  let recentRequests: RequestEvent[] = [];
  if (can.requests) {
    const grouped = db.prepare('SELECT outcome, error_kind, stop_reason, COUNT(*) FROM agent_requests GROUP BY outcome, error_kind, stop_reason').raw().all() as Array<[string | null, string | null, string | null, number]>;
    requestsAll = emptyRequests();
    for (const [outcome, kind, stop, n] of grouped) countRequest(requestsAll, outcome, kind, stop, n);
    recentRequests = db.prepare('SELECT started_at, outcome, error_kind, stop_reason FROM agent_requests WHERE started_at >= ?').raw().all(now - WINDOW_MS['24h']) as RequestEvent[];
  }
  const windowDigest = (name: '1h' | '24h'): WindowDigest => {
    const fromS = Math.floor((now - WINDOW_MS[name]) / 1000);
    const untilS = Math.floor((validUntil - WINDOW_MS[name]) / 1000);
    const fromMs = now - WINDOW_MS[name];
    const untilMs = validUntil - WINDOW_MS[name];
    const out = recentOut.filter((e) => e[0] >= fromS);
    const requests = can.requests ? emptyRequests() : null;
    const inRequests = recentRequests.filter((e) => e[0] >= fromMs);
    if (requests) for (const [, outcome, kind, stop] of inRequests) countRequest(requests, outcome, kind, stop, 1);
    return {
      in: recentIn.filter((t) => t >= fromS).length,
      out: out.length,
      prompt: sum(out, 2),
      completion: sum(out, 3),
      total: sum(out, 4),
      deliveryFailures: sum(out, 5),
      latencies: out.flatMap((e) => (e[1] === null ? [] : [e[1]])).sort((a, b) => a - b),
      requests,
      leavingIn: recentIn.filter((t) => t >= fromS && t < untilS),
      leavingOut: out.filter((e) => e[0] < untilS),
      leavingRequests: inRequests.filter((e) => e[0] < untilMs),
    };
  };
  return {
    readAt: now,
    validUntil,
    schemaVersion: schemaVersion(db),
    can,
    totals: { in: totals[0]!, out: totals[1]!, prompt: totals[2]!, completion: totals[3]!, total: totals[4]!, deliveryFailures: totals[6]! },
    allLatency,
    requestsAll,
    windows: { '1h': windowDigest('1h'), '24h': windowDigest('24h') },
    queue: readQueue(db),
  };
}

/** The windows at `now`, from `readAt` up to `validUntil`. */
export function metricsFromDigest(d: DatabaseDigest, now: number): DatabaseMetrics {
  const window = (name: '1h' | '24h'): WindowMetrics => {
    const w = d.windows[name];
    const fromS = Math.floor((now - WINDOW_MS[name]) / 1000);
    const fromMs = now - WINDOW_MS[name];
    const goneOut = w.leavingOut.filter((e) => e[0] < fromS);
    let latencies = w.latencies;
    if (goneOut.some((e) => e[1] !== null)) {
      latencies = [...latencies];
      for (const e of goneOut) if (e[1] !== null) latencies.splice(latencies.indexOf(e[1]), 1);
    }
    let requests = w.requests;
    const goneRequests = w.leavingRequests.filter((e) => e[0] < fromMs);
    if (requests && goneRequests.length > 0) {
      requests = { ...requests, failuresByKind: { ...requests.failuresByKind }, stopReasons: { ...requests.stopReasons } };
      for (const [, outcome, kind, stop] of goneRequests) countRequest(requests, outcome, kind, stop, -1);
    }
    return {
      messagesIn: w.in - w.leavingIn.filter((t) => t < fromS).length,
      messagesOut: w.out - goneOut.length,
      latencyMs: d.can.timing ? { count: latencies.length, p50: percentileOfSorted(latencies, 50), p95: percentileOfSorted(latencies, 95), p99: percentileOfSorted(latencies, 99) } : null,
      tokens: d.can.timing ? { prompt: w.prompt - sum(goneOut, 2), completion: w.completion - sum(goneOut, 3), total: w.total - sum(goneOut, 4) } : null,
      requests,
      deliveryFailures: d.can.delivery ? w.deliveryFailures - sum(goneOut, 5) : null,
    };
  };
  const all: WindowMetrics = {
    messagesIn: d.totals.in,
    messagesOut: d.totals.out,
    latencyMs: d.allLatency,
    tokens: d.can.timing ? { prompt: d.totals.prompt, completion: d.totals.completion, total: d.totals.total } : null,
    requests: d.requestsAll,
    deliveryFailures: d.can.delivery ? d.totals.deliveryFailures : null,
  };
  const { oldestPendingMs, ...queue } = d.queue;
  return {
    schemaVersion: d.schemaVersion,
    windows: { '1h': window('1h'), '24h': window('24h'), all },
    queue: { ...queue, oldestPendingAgeS: oldestPendingMs === null ? null : Math.max(0, Math.round((now - oldestPendingMs) / 1000)) },
  };
}

function emptyRequests(): RequestCounts {
  return { attempts: 0, replied: 0, retries: 0, failures: 0, failuresByKind: {}, stopReasons: {} };
}

function countRequest(counts: RequestCounts, outcome: string | null, kind: string | null, stop: string | null, n: number): void {
  counts.attempts += n;
  if (outcome === 'replied') counts.replied += n;
  if (outcome === 'retry') counts.retries += n;
  // An outcome this animus does not know yet counts as a failure: it is not a reply.
  if (!NOT_FAILED.has(outcome ?? '')) {
    counts.failures += n;
    bump(counts.failuresByKind, kind ?? 'unknown', n);
  }
  if (stop && stop !== 'end_turn') bump(counts.stopReasons, stop, n);
}

/** Adds n (negative: an event that left the window) and drops a key that reaches 0, as a fresh count would not have it. */
function bump(counts: Record<string, number>, key: string, n: number): void {
  const value = (counts[key] ?? 0) + n;
  if (value === 0) delete counts[key];
  else counts[key] = value;
}

function sum(events: OutEvent[], column: 2 | 3 | 4 | 5): number {
  let total = 0;
  for (const e of events) total += Number(e[column]) || 0;
  return total;
}

function readQueue(db: Database): DatabaseDigest['queue'] {
  const rows = db
    .prepare("SELECT status, COUNT(*), COUNT(CASE WHEN attempts > 0 THEN 1 END) FROM queue WHERE status IN ('pending', 'processing', 'failed') GROUP BY status")
    .raw()
    .all() as Array<[string, number, number]>;
  const of = (status: string) => rows.find((r) => r[0] === status);
  const oldest = db.prepare("SELECT timestamp FROM queue WHERE status = 'pending' ORDER BY id LIMIT 1").pluck().get() as string | null | undefined;
  return {
    pending: of('pending')?.[1] ?? 0,
    processing: of('processing')?.[1] ?? 0,
    failed: of('failed')?.[1] ?? 0,
    retrying: of('pending')?.[2] ?? 0,
    oldestPendingMs: (oldest ? parseSqliteTime(oldest) : undefined) ?? null,
  };
}
