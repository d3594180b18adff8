import type { Database } from 'better-sqlite3';
import { statSync } from 'node:fs';
import { AnimusError } from '../core/errors.js';
import { databaseError, hasColumn, openDatabase } from './database.js';
import { SCHEMA_VERSION, schemaVersion } from './migrations.js';
import { BROCA_TABLES, QUEUE_STATUSES, type QueueStatus } from './schema.js';

/**
 * The operator's view of an agent's queue (`animus queue …`): Broca's qtool
 * operations with Broca's meaning, minus its faults (its `flush --id` deleted the
 * row, its `delete --all` deleted row by row outside a transaction and only what
 * `list` showed), plus stats and retry. The runtime's own claiming and completing
 * lives in work-queue.ts; everything here is one statement or one transaction, so
 * it is safe while the runtime runs.
 *
 * JSON shapes (stable; `animus queue … --json`):
 *   list:   { agent, statuses: string[], total, limit, items: QueueItem[] }
 *   stats:  QueueStats
 *   flush:  { agent, flushed, ids: number[], migrated: Migrated|null }
 *   delete: { agent, deleted, ids: number[], skipped: number[], migrated: Migrated|null }
 *   retry:  { agent, retried, ids: number[], migrated: Migrated|null }
 *   QueueItem: { id, status, attempts, timestamp, messageId, message,
 *                user: { id, username, displayName, platform, platformUserId } | null,
 *                lastError: string|null, availableAt: number|null }
 *   Migrated: { from, to } — the schema was upgraded before writing (a Broca-made file).
 */

/** Broca's `list` shows what still needs attention. */
export const DEFAULT_LIST_STATUSES: readonly QueueStatus[] = ['pending', 'processing', 'failed'];
export const DEFAULT_LIST_LIMIT = 100;

export interface QueueUser {
  id: number;
  username: string | null;
  displayName: string | null;
  platform: string | null;
  platformUserId: string | null;
}

export interface QueueItem {
  id: number;
  status: string;
  attempts: number;
  timestamp: string | null;
  messageId: number | null;
  message: string | null;
  user: QueueUser | null;
  /** Why the last attempt failed (null on a Broca-made database, which does not record it). */
  lastError: string | null;
  /** ms since epoch before which the runtime will not try the item again. */
  availableAt: number | null;
}

export interface QueueList {
  agent: string;
  statuses: string[];
  /** Items matching the statuses; `items` holds at most `limit` of them, oldest first. */
  total: number;
  limit: number;
  items: QueueItem[];
}

export interface AgeOfItem {
  id: number;
  timestamp: string | null;
  /** Seconds since the item was queued; null when its timestamp cannot be read. */
  ageSeconds: number | null;
}

export interface QueueStats {
  agent: string;
  schemaVersion: number;
  total: number;
  counts: Record<QueueStatus, number>;
  /** Rows whose status is none of Broca's five (written by another tool). */
  other: number;
  /** Pending items that already failed at least once and wait for a retry. */
  retrying: number;
  oldestPending: AgeOfItem | null;
  oldestProcessing: AgeOfItem | null;
}

export interface Migrated {
  from: number;
  to: number;
}

export interface Opened {
  db: Database;
  /** Set when opening for writing upgraded the schema first. */
  migrated: Migrated | null;
}

/**
 * Read-only opens never change the file (no WAL switch, no migration); writing opens
 * migrate first, and report it so the command can say that a Broca-made file was
 * upgraded (additively: Broca still opens it).
 */
export function openQueueDatabase(path: string, mode: 'read' | 'write'): Opened {
  const probe = openDatabase(path, { readonly: true });
  let from: number;
  try {
    requireBrocaTables(probe, path);
    from = schemaVersion(probe);
  } catch (error) {
    probe.close();
    throw databaseError(path, error);
  }
  if (mode === 'read') return { db: probe, migrated: null };
  probe.close();
  const db = openDatabase(path);
  return { db, migrated: from < SCHEMA_VERSION ? { from, to: schemaVersion(db) } : null };
}

/**
 * A 0-byte file, or a SQLite file without Broca's four tables, is no agent database:
 * say so in one line rather than fail on the first query (and never let a write
 * migrate it into an empty one).
 */
function requireBrocaTables(db: Database, path: string): void {
  const names = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((row) => row.name));
  const missing = BROCA_TABLES.filter((table) => !names.has(table));
  if (missing.length === 0) return;
  const what = missing.length === BROCA_TABLES.length ? 'has none of the agent tables' : `lacks the table(s) ${missing.join(', ')}`;
  throw new AnimusError('EBADDB', `${path} ${what} (${statSync(path).size} bytes): it is not an agent database; restore it with \`animus restore\``);
}

export function parseStatuses(raw: readonly string[] | undefined): QueueStatus[] {
  if (!raw || raw.length === 0) return [...DEFAULT_LIST_STATUSES];
  const parts = raw.flatMap((value) => value.split(',')).map((value) => value.trim().toLowerCase()).filter((value) => value !== '');
  if (parts.includes('all')) return [...QUEUE_STATUSES];
  const bad = parts.filter((value) => !(QUEUE_STATUSES as readonly string[]).includes(value));
  if (bad.length > 0) {
    throw new AnimusError('EUSAGE', `--status ${bad.join(',')} is not a queue status: use ${QUEUE_STATUSES.join(', ')} or all (comma-separated)`);
  }
  return [...new Set(parts)] as QueueStatus[];
}

export function listQueue(db: Database, agent: string, options: { statuses?: readonly QueueStatus[]; limit?: number } = {}): QueueList {
  const statuses = [...(options.statuses ?? DEFAULT_LIST_STATUSES)];
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  const marks = statuses.map(() => '?').join(', ');
  const total = (db.prepare(`SELECT COUNT(*) AS n FROM queue WHERE status IN (${marks})`).get(...statuses) as { n: number }).n;
  const animusColumns = hasColumn(db, 'queue', 'last_error');
  // One profile per item: the one the message came from, else the user's first. A
  // plain join on letta_user_id repeats an item once per profile of a user.
  const rows = db
    .prepare(
      `SELECT q.id, q.status, q.attempts, q.timestamp, q.message_id, q.letta_user_id,
              ${animusColumns ? 'q.last_error, q.available_at' : 'NULL AS last_error, NULL AS available_at'},
              m.message, p.username, p.display_name, p.platform, p.platform_user_id
         FROM queue q
         LEFT JOIN messages m ON m.id = q.message_id
         LEFT JOIN platform_profiles p ON p.id = COALESCE(m.platform_profile_id,
              (SELECT id FROM platform_profiles WHERE letta_user_id = q.letta_user_id ORDER BY id LIMIT 1))
        WHERE q.status IN (${marks})
        ORDER BY q.id
        LIMIT ?`,
    )
    .all(...statuses, limit) as Array<Record<string, unknown>>;
  return { agent, statuses, total, limit, items: rows.map(toItem) };
}

function toItem(row: Record<string, unknown>): QueueItem {
  const userId = row.letta_user_id as number | null;
  return {
    id: row.id as number,
    status: String(row.status),
    attempts: (row.attempts as number | null) ?? 0,
    timestamp: (row.timestamp as string | null) ?? null,
    messageId: (row.message_id as number | null) ?? null,
    message: (row.message as string | null) ?? null,
    user:
      userId === null && row.username === null && row.platform_user_id === null
        ? null
        : {
            id: userId as number,
            username: (row.username as string | null) ?? null,
            displayName: (row.display_name as string | null) ?? null,
            platform: (row.platform as string | null) ?? null,
            platformUserId: row.platform_user_id === null || row.platform_user_id === undefined ? null : String(row.platform_user_id),
          },
    lastError: (row.last_error as string | null) ?? null,
    availableAt: (row.available_at as number | null) ?? null,
  };
}

export function queueStats(db: Database, agent: string, now: number = Date.now()): QueueStats {
  const counts = Object.fromEntries(QUEUE_STATUSES.map((status) => [status, 0])) as Record<QueueStatus, number>;
  let other = 0;
  let total = 0;
  for (const row of db.prepare('SELECT status, COUNT(*) AS n FROM queue GROUP BY status').all() as Array<{ status: string | null; n: number }>) {
    total += row.n;
    if (row.status !== null && row.status in counts) counts[row.status as QueueStatus] += row.n;
    else other += row.n;
  }
  const retrying = (db.prepare("SELECT COUNT(*) AS n FROM queue WHERE status = 'pending' AND attempts > 0").get() as { n: number }).n;
  const oldest = (status: QueueStatus): AgeOfItem | null => {
    const row = db.prepare('SELECT id, timestamp FROM queue WHERE status = ? ORDER BY id LIMIT 1').get(status) as { id: number; timestamp: string | null } | undefined;
    if (!row) return null;
    const at = parseDbTimestamp(row.timestamp);
    return { id: row.id, timestamp: row.timestamp, ageSeconds: at === undefined ? null : Math.max(0, Math.round((now - at) / 1000)) };
  };
  return {
    agent,
    schemaVersion: schemaVersion(db),
    total,
    counts,
    other,
    retrying,
    oldestPending: oldest('pending'),
    oldestProcessing: oldest('processing'),
  };
}

/**
 * SQLite's CURRENT_TIMESTAMP ("YYYY-MM-DD HH:MM:SS", UTC without a zone, as Broca
 * writes it) or an ISO string; ms since epoch, undefined when unreadable.
 */
export function parseDbTimestamp(text: string | null | undefined): number | undefined {
  if (!text) return undefined;
  const sqlite = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/.exec(text.trim());
  const ms = sqlite ? Date.parse(`${sqlite[1]}T${sqlite[2]}Z`) : Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

const touch = (db: Database) => (hasColumn(db, 'queue', 'updated_at') ? ', updated_at = CURRENT_TIMESTAMP' : '');

/**
 * Broca's `flush --all`: every pending item becomes `flushed` (kept, never sent).
 * With ids, only those, which must be pending (Broca's `flush --id` deleted the row).
 */
export function flushQueue(db: Database, ids?: number[]): { flushed: number; ids: number[] } {
  if (ids && ids.length > 0) {
    return db.transaction(() => {
      const rows = findItems(db, ids);
      const wrong = rows.filter((row) => row.status !== 'pending');
      if (wrong.length > 0) {
        throw new AnimusError('EEXISTS', `cannot flush ${wrong.map((row) => `item ${row.id} (${row.status})`).join(', ')}: only pending items are flushed; nothing was changed`);
      }
      const update = db.prepare(`UPDATE queue SET status = 'flushed'${touch(db)} WHERE id = ? AND status = 'pending'`);
      for (const row of rows) update.run(row.id);
      return { flushed: rows.length, ids: rows.map((row) => row.id) };
    }).immediate();
  }
  const all = (db.prepare(`UPDATE queue SET status = 'flushed'${touch(db)} WHERE status = 'pending' RETURNING id`).all() as Array<{ id: number }>)
    .map((row) => row.id)
    .sort((a, b) => a - b);
  return { flushed: all.length, ids: all };
}

/** Broca's `delete --all`: what still needs attention (pending, processing, failed); completed and flushed rows stay. */
export const DEFAULT_DELETE_STATUSES: readonly QueueStatus[] = ['pending', 'processing', 'failed'];

export type DeleteTarget = { ids: number[]; force?: boolean } | { all: true; statuses?: readonly QueueStatus[]; force?: boolean };

/**
 * Deletes queue rows (the messages stay: they are the conversation's history). An
 * item the runtime is processing is left alone unless `force`: deleting it under the
 * runtime loses the reply's bookkeeping. Unknown ids are an error, and nothing is
 * deleted then. `all` without statuses means Broca's set (DEFAULT_DELETE_STATUSES).
 */
export function deleteQueueItems(db: Database, target: DeleteTarget): { deleted: number; ids: number[]; skipped: number[] } {
  return db.transaction(() => {
    let rows: Array<{ id: number; status: string }>;
    if ('all' in target) {
      const statuses = target.statuses && target.statuses.length > 0 ? target.statuses : DEFAULT_DELETE_STATUSES;
      rows = db.prepare(`SELECT id, status FROM queue WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY id`).all(...statuses) as typeof rows;
    } else {
      rows = findItems(db, target.ids);
    }
    const skipped = target.force ? [] : rows.filter((row) => row.status === 'processing').map((row) => row.id);
    if (!('all' in target) && skipped.length > 0) {
      throw new AnimusError('EEXISTS', `queue item ${skipped.join(', ')} is being processed by the runtime: wait for it, or pass --force if the runtime is stopped or stuck`);
    }
    const remove = db.prepare('DELETE FROM queue WHERE id = ?');
    const ids = rows.filter((row) => !skipped.includes(row.id)).map((row) => row.id);
    for (const id of ids) remove.run(id);
    return { deleted: ids.length, ids, skipped };
  }).immediate();
}

/**
 * Sends failed (or flushed) items through the queue again: back to `pending` with a
 * fresh attempt count and no backoff, so the runtime's next poll takes them.
 */
export function retryQueueItems(db: Database, target: { ids: number[] } | { failed: true }): { retried: number; ids: number[] } {
  const animus = hasColumn(db, 'queue', 'available_at');
  const reset = `UPDATE queue SET status = 'pending', attempts = 0${animus ? ', available_at = 0, claimed_at = NULL, last_error = NULL' : ''}${touch(db)} WHERE id = ?`;
  return db.transaction(() => {
    let rows: Array<{ id: number; status: string }>;
    if ('failed' in target) {
      rows = db.prepare("SELECT id, status FROM queue WHERE status = 'failed' ORDER BY id").all() as typeof rows;
    } else {
      rows = findItems(db, target.ids);
      const wrong = rows.filter((row) => row.status !== 'failed' && row.status !== 'flushed');
      if (wrong.length > 0) {
        throw new AnimusError(
          'EEXISTS',
          `cannot retry ${wrong.map((row) => `item ${row.id} (${row.status})`).join(', ')}: only failed or flushed items are retried; nothing was changed`,
        );
      }
    }
    const update = db.prepare(reset);
    for (const row of rows) update.run(row.id);
    return { retried: rows.length, ids: rows.map((row) => row.id) };
  }).immediate();
}

function findItems(db: Database, ids: number[]): Array<{ id: number; status: string }> {
  const unique = [...new Set(ids)];
  const rows = db.prepare(`SELECT id, status FROM queue WHERE id IN (${unique.map(() => '?').join(', ')}) ORDER BY id`).all(...unique) as Array<{ id: number; status: string }>;
  const missing = unique.filter((id) => !rows.some((row) => row.id === id));
  if (missing.length > 0) {
    throw new AnimusError('ENOTFOUND', `no queue item ${missing.join(', ')}: run \`animus queue list --status all\` to see the ids; nothing was changed`);
  }
  return rows;
}
