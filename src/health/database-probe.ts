import { describeError } from '../core/errors.js';
import { openDatabase } from '../store/database.js';
import { schemaVersion } from '../store/migrations.js';
import type { QueueFacts } from './types.js';

export interface DatabaseProbe {
  /** undefined when the file opened and passed quick_check; else one line. */
  problem?: string;
  schemaVersion?: number;
  queue?: QueueFacts;
  /** ISO time of the newest reply the agent gave (delivered when animus tracks delivery). */
  lastReplyAt?: string | null;
  /** When the oldest pending item was queued (ms), so a cached probe can age it. */
  oldestPendingMs?: number | null;
}

/** A probe of an unchanged file, re-aged to `now`. */
export function ageProbe(probe: DatabaseProbe, now: number): DatabaseProbe {
  if (!probe.queue) return probe;
  const ms = probe.oldestPendingMs;
  return { ...probe, queue: { ...probe.queue, oldestPendingAgeS: ms === null || ms === undefined ? null : Math.max(0, Math.round((now - ms) / 1000)) } };
}

/**
 * Everything health reads from an agent's database, on a read-only handle that never
 * changes the file, and on a Broca-made file without animus's columns as well.
 */
export function probeDatabase(path: string, now: number = Date.now()): DatabaseProbe {
  let db;
  try {
    db = openDatabase(path, { readonly: true });
  } catch (error) {
    return { problem: describeError(error) };
  }
  try {
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') return { problem: `quick_check failed: ${check}`, schemaVersion: schemaVersion(db) };
    const version = schemaVersion(db);
    const counts = db.prepare("SELECT status, COUNT(*) AS n FROM queue WHERE status IN ('pending', 'processing', 'failed') GROUP BY status").all() as Array<{ status: string; n: number }>;
    const count = (status: string) => counts.find((row) => row.status === status)?.n ?? 0;
    const oldest = db.prepare("SELECT timestamp FROM queue WHERE status = 'pending' ORDER BY id LIMIT 1").pluck().get() as string | null | undefined;
    const oldestMs = oldest ? parseSqliteTime(oldest) : undefined;
    const queue: QueueFacts = {
      pending: count('pending'),
      processing: count('processing'),
      failed: count('failed'),
      oldestPendingAgeS: oldestMs === undefined ? null : Math.max(0, Math.round((now - oldestMs) / 1000)),
    };
    // Newest first by rowid: stops at the first replied message instead of scanning the table.
    // delivered_at came with migration 1: the version says whether it is there (a Broca-made file has 0).
    const delivered = version >= 1;
    const reply = db
      .prepare(`SELECT timestamp${delivered ? ', delivered_at' : ''} FROM messages WHERE agent_response IS NOT NULL AND agent_response != '' ORDER BY id DESC LIMIT 1`)
      .get() as { timestamp: string | null; delivered_at?: string | null } | undefined;
    const replyText = reply ? (reply.delivered_at ?? reply.timestamp) : undefined;
    const replyMs = replyText ? parseSqliteTime(replyText) : undefined;
    return { schemaVersion: version, queue, oldestPendingMs: oldestMs ?? null, lastReplyAt: replyMs === undefined ? (replyText ?? null) : new Date(replyMs).toISOString() };
  } catch (error) {
    return { problem: describeError(error) };
  } finally {
    db.close();
  }
}

/** Broca writes `YYYY-MM-DD HH:MM:SS` (UTC, from CURRENT_TIMESTAMP) or ISO text; animus may write epoch ms. */
export function parseSqliteTime(text: string | number): number | undefined {
  if (typeof text === 'number') return text > 1e11 ? text : text * 1000;
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return parseSqliteTime(Number(trimmed));
  const zoned = /(Z|[+-]\d\d:?\d\d)$/.test(trimmed);
  const ms = Date.parse(zoned ? trimmed : `${trimmed.replace(' ', 'T')}Z`);
  return Number.isNaN(ms) ? undefined : ms;
}
