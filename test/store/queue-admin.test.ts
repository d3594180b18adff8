import Database from 'better-sqlite3';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { tempDir } from '../helpers/temp.js';
import {
  deleteQueueItems,
  flushQueue,
  listQueue,
  openQueueDatabase,
  parseDbTimestamp,
  parseStatuses,
  queueStats,
  retryQueueItems,
} from '../../src/store/queue-admin.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const AGENT = 'agent-00000000-0000-4000-8000-000000000001';

async function brocaDb(): Promise<string> {
  const path = join(await tempDir('queue-admin'), 'animus.db');
  makeBrocaDatabase(path);
  return path;
}

function statusOf(path: string): Record<number, string> {
  const db = new Database(path, { readonly: true });
  try {
    return Object.fromEntries((db.prepare('SELECT id, status FROM queue').all() as Array<{ id: number; status: string }>).map((r) => [r.id, r.status]));
  } finally {
    db.close();
  }
}

describe('queue admin on a Broca-made database', () => {
  it('lists pending, processing and failed items with their user and message, oldest first', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'read');
    const list = listQueue(db, AGENT);
    db.close();
    expect(list.statuses).toEqual(['pending', 'processing', 'failed']);
    expect(list.total).toBe(8);
    expect(list.items.map((i) => i.status)).toEqual(['pending', 'pending', 'processing', 'failed', 'pending', 'pending', 'processing', 'failed']);
    expect(list.items[0]).toMatchObject({ id: 1, attempts: 0, message: 'hello 1.0', messageId: 1, lastError: null, availableAt: null });
    expect(list.items[0]!.user).toEqual({ id: 1, username: 'user1', displayName: 'User 1', platform: 'telegram', platformUserId: '1001' });
    expect(list.items[3]).toMatchObject({ status: 'failed', attempts: 5 });
  });

  it('never changes the file when reading: same bytes, same mtime, no journal left', async () => {
    const path = await brocaDb();
    const before = await readFile(path);
    const mtime = (await stat(path)).mtimeMs;
    const { db } = openQueueDatabase(path, 'read');
    listQueue(db, AGENT, { statuses: parseStatuses(['all']) });
    queueStats(db, AGENT);
    db.close();
    expect((await readFile(path)).equals(before)).toBe(true);
    expect((await stat(path)).mtimeMs).toBe(mtime);
    await expect(stat(`${path}-wal`)).rejects.toThrow();
  });

  it('shows each item once when its user has several profiles, and honours --status and --limit', async () => {
    const path = await brocaDb();
    const raw = new Database(path);
    raw.prepare("INSERT INTO platform_profiles (letta_user_id, platform, platform_user_id, username) VALUES (1, 'telegram_user', '555', 'other')").run();
    raw.close();
    const { db } = openQueueDatabase(path, 'read');
    const all = listQueue(db, AGENT, { statuses: parseStatuses(['all']) });
    const failed = listQueue(db, AGENT, { statuses: parseStatuses(['failed,flushed']), limit: 1 });
    db.close();
    expect(all.items).toHaveLength(12);
    expect(new Set(all.items.map((i) => i.id)).size).toBe(12);
    expect(failed).toMatchObject({ total: 4, limit: 1 });
    expect(failed.items).toHaveLength(1);
    expect(failed.items[0]!.status).toBe('failed');
  });

  it('counts every status and the age of the oldest pending item', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'read');
    const oldest = db.prepare("SELECT timestamp FROM queue WHERE status = 'pending' ORDER BY id LIMIT 1").get() as { timestamp: string };
    const now = parseDbTimestamp(oldest.timestamp)! + 90_000;
    const stats = queueStats(db, AGENT, now);
    db.close();
    expect(stats).toMatchObject({
      agent: AGENT,
      schemaVersion: 0,
      total: 12,
      counts: { pending: 4, processing: 2, failed: 2, completed: 2, flushed: 2 },
      other: 0,
      retrying: 0,
      oldestPending: { id: 1, ageSeconds: 90 },
      oldestProcessing: { id: 3 },
    });
  });

  it('upgrades the schema before writing and says so; flush turns pending into flushed only', async () => {
    const path = await brocaDb();
    const { db, migrated } = openQueueDatabase(path, 'write');
    expect(migrated).toEqual({ from: 0, to: SCHEMA_VERSION });
    const result = flushQueue(db);
    db.close();
    expect(result).toEqual({ flushed: 4, ids: [1, 2, 7, 8] });
    const after = statusOf(path);
    expect(Object.values(after).filter((s) => s === 'pending')).toHaveLength(0);
    expect(Object.values(after).filter((s) => s === 'flushed')).toHaveLength(6);
    expect(after[3]).toBe('processing');
    const again = openQueueDatabase(path, 'write');
    expect(again.migrated).toBeNull();
    again.db.close();
  });

  it('works on a file a later animus migrated further, leaving its version alone', async () => {
    const path = await brocaDb();
    openQueueDatabase(path, 'write').db.close();
    // What a later animus may have added: a column and a version this code does not know.
    const later = new Database(path);
    later.exec('ALTER TABLE messages ADD COLUMN from_the_future TEXT');
    later.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    later.close();
    const { db, migrated } = openQueueDatabase(path, 'write');
    expect(migrated).toBeNull();
    expect(flushQueue(db).flushed).toBe(4);
    db.close();
    const after = new Database(path, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    after.close();
  });

  it('flushes single pending items by id, and nothing when one of them is not pending', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'write');
    expect(() => flushQueue(db, [2, 3])).toThrow(/item 3 \(processing\): only pending items are flushed/);
    expect(flushQueue(db, [2])).toEqual({ flushed: 1, ids: [2] });
    db.close();
    expect(statusOf(path)).toMatchObject({ 1: 'pending', 2: 'flushed', 3: 'processing' });
  });

  it('deletes by id, refuses an item being processed unless forced, and changes nothing for an unknown id', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'write');
    expect(deleteQueueItems(db, { ids: [1, 4] })).toEqual({ deleted: 2, ids: [1, 4], skipped: [] });
    expect(() => deleteQueueItems(db, { ids: [2, 3] })).toThrow(/being processed.*--force/);
    expect(() => deleteQueueItems(db, { ids: [2, 999] })).toThrow(expect.objectContaining({ code: 'ENOTFOUND' }));
    expect(Object.keys(statusOf(path))).toHaveLength(10);
    expect(deleteQueueItems(db, { ids: [3], force: true })).toMatchObject({ deleted: 1 });
    db.close();
    expect(statusOf(path)[3]).toBeUndefined();
  });

  it("delete --all means Broca's (pending, processing, failed; completed and flushed stay), leaves what the runtime is processing, and --status narrows it", async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'write');
    expect(deleteQueueItems(db, { all: true, statuses: ['failed'] })).toEqual({ deleted: 2, ids: [4, 10], skipped: [] });
    const rest = deleteQueueItems(db, { all: true });
    db.close();
    expect(rest).toEqual({ deleted: 4, ids: [1, 2, 7, 8], skipped: [3, 9] });
    expect(statusOf(path)).toEqual({ 3: 'processing', 5: 'completed', 6: 'flushed', 9: 'processing', 11: 'completed', 12: 'flushed' });
  });

  it('retries failed items with a fresh attempt count and clears the backoff; refuses other statuses', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'write');
    db.prepare("UPDATE queue SET available_at = 99999999999999, last_error = 'HTTP 500' WHERE id = 4").run();
    expect(retryQueueItems(db, { failed: true })).toEqual({ retried: 2, ids: [4, 10] });
    const row = db.prepare('SELECT status, attempts, available_at, last_error FROM queue WHERE id = 4').get();
    expect(row).toEqual({ status: 'pending', attempts: 0, available_at: 0, last_error: null });
    expect(() => retryQueueItems(db, { ids: [6, 5] })).toThrow(/item 5 \(completed\)/);
    expect(retryQueueItems(db, { ids: [6] })).toEqual({ retried: 1, ids: [6] });
    db.close();
    expect(statusOf(path)[5]).toBe('completed');
  });

  it.each([
    [['pending'], ['pending']],
    [['pending,failed', 'failed'], ['pending', 'failed']],
    [['ALL'], ['pending', 'processing', 'completed', 'failed', 'flushed']],
    [[], ['pending', 'processing', 'failed']],
  ])('parses --status %j', (raw, expected) => {
    expect(parseStatuses(raw)).toEqual(expected);
  });

  it('refuses an unknown status naming it', () => {
    expect(() => parseStatuses(['pending,done'])).toThrow(/--status done is not a queue status/);
  });

  it('reads Broca and ISO timestamps as UTC', () => {
    expect(parseDbTimestamp('2026-01-02 03:04:05')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseDbTimestamp('2026-01-02T03:04:05.000Z')).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(parseDbTimestamp('yesterday')).toBeUndefined();
  });
});
