import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { OLDEST_DUE_SQL, claimNext, completeItem, dueDeliveries, failDelivery, markDelivered, markPartsDelivered, nextDueAt, recoverStale, releaseItem, retryDelivery, retryItem } from '../../src/store/work-queue.js';

async function freshDb() {
  return openDatabase(`${await tempDir('animus-store')}/animus.db`, { create: true });
}

const msg = (text: string, extra: Record<string, unknown> = {}) => ({ platform: 'telegram', platformUserId: '42', username: 'alice', text, ...extra });

describe('storeInbound', () => {
  it('creates the user and profile once, then a message and a pending queue row per message', async () => {
    const db = await freshDb();
    const a = storeInbound(db, msg('one', { platformMessageId: '1' }));
    const b = storeInbound(db, msg('two', { platformMessageId: '2', username: 'alice2' }));
    expect(a).toMatchObject({ status: 'queued', queueId: 1, messageId: 1 });
    expect(b).toMatchObject({ status: 'queued', queueId: 2, lettaUserId: a.status === 'queued' ? a.lettaUserId : -1 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM letta_users').get()).toEqual({ n: 1 });
    expect(db.prepare('SELECT username, platform FROM platform_profiles').all()).toEqual([{ username: 'alice2', platform: 'telegram' }]);
    expect(db.prepare('SELECT status, attempts FROM queue').all()).toEqual([
      { status: 'pending', attempts: 0 },
      { status: 'pending', attempts: 0 },
    ]);
  });

  it('stores a redelivered platform message once, and ignores inactive users', async () => {
    const db = await freshDb();
    storeInbound(db, msg('one', { platformMessageId: '7', chatId: '42' }));
    expect(storeInbound(db, msg('one', { platformMessageId: '7', chatId: '42' }))).toEqual({ status: 'duplicate', messageId: 1 });
    // Same message id in another chat is another message.
    expect(storeInbound(db, msg('one', { platformMessageId: '7', chatId: '-100' })).status).toBe('queued');
    db.prepare('UPDATE letta_users SET is_active = 0').run();
    expect(storeInbound(db, msg('later'))).toMatchObject({ status: 'ignored', reason: 'inactive_user' });
    expect(db.prepare('SELECT COUNT(*) AS n FROM queue').get()).toEqual({ n: 2 });
  });
});

describe('work queue', () => {
  it('claims oldest due first, skips items waiting for a retry, completes with the reply in one step', async () => {
    const db = await freshDb();
    for (const text of ['a', 'b', 'c']) storeInbound(db, msg(text));
    const first = claimNext(db)!;
    expect(first).toMatchObject({ queueId: 1, attempts: 1, text: 'a', username: 'alice', platform: 'telegram', chatId: '42' });
    retryItem(db, first.queueId, 'HTTP 500', Date.now() + 60_000);
    expect(claimNext(db)).toMatchObject({ queueId: 2 });
    expect(claimNext(db)).toMatchObject({ queueId: 3 });
    expect(claimNext(db)).toBeUndefined();
    expect(nextDueAt(db)).toBeGreaterThan(Date.now());
    completeItem(db, { queueId: 2, messageId: 2, reply: 'answer', latencyMs: 12.4, usage: { totalTokens: 9 } });
    expect(db.prepare('SELECT status FROM queue WHERE id = 2').get()).toEqual({ status: 'completed' });
    expect(db.prepare('SELECT agent_response, processed, latency_ms, total_tokens, delivery_status FROM messages WHERE id = 2').get()).toEqual({
      agent_response: 'answer',
      processed: 1,
      latency_ms: 12,
      total_tokens: 9,
      delivery_status: 'pending',
    });
    completeItem(db, { queueId: 3, messageId: 3, reply: '  ', latencyMs: 1 });
    expect(db.prepare('SELECT delivery_status FROM messages WHERE id = 3').get()).toEqual({ delivery_status: 'skipped' });
  });

  it('claims from a backlog without sorting it: the oldest due item is read in id order', async () => {
    const db = await freshDb();
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${OLDEST_DUE_SQL}`).all({ now: Date.now() }) as Array<{ detail: string }>).map((row) => row.detail);
    expect(plan).toEqual([expect.stringContaining('USING COVERING INDEX idx_queue_claim (status=?)')]);
    for (let i = 0; i < 5; i++) storeInbound(db, { platform: 'local', platformUserId: 'b', username: 'b', text: `m${i}` });
    retryItem(db, claimNext(db)!.queueId, 'later', Date.now() + 60_000);
    retryItem(db, claimNext(db)!.queueId, 'earlier', Date.now() - 1);
    expect([claimNext(db)?.queueId, claimNext(db)?.queueId, claimNext(db)?.queueId, claimNext(db)?.queueId, claimNext(db)]).toEqual([2, 3, 4, 5, undefined]);
  });

  it('releases a shut-down item without counting the attempt, and recovers crashed items until their attempts are used', async () => {
    const db = await freshDb();
    storeInbound(db, msg('a'));
    storeInbound(db, msg('b'));
    releaseItem(db, claimNext(db)!.queueId);
    expect(db.prepare('SELECT status, attempts FROM queue WHERE id = 1').get()).toEqual({ status: 'pending', attempts: 0 });
    claimNext(db);
    claimNext(db);
    db.prepare('UPDATE queue SET attempts = 3 WHERE id = 2').run();
    expect(recoverStale(db, { maxAttempts: 3, claimedBefore: Number.POSITIVE_INFINITY })).toEqual({ requeued: [1], failed: [2] });
    expect(db.prepare('SELECT status, last_error FROM queue ORDER BY id').all()).toEqual([
      { status: 'pending', last_error: 'recovered after the runtime stopped while processing it' },
      { status: 'failed', last_error: 'gave up after 3 attempts: the runtime stopped while processing this item' },
    ]);
    // The item in flight is never taken from under the worker.
    const inFlight = claimNext(db)!;
    expect(recoverStale(db, { maxAttempts: 9, claimedBefore: Number.POSITIVE_INFINITY, exceptId: inFlight.queueId })).toEqual({ requeued: [], failed: [] });
  });

  it('tracks delivery apart: due, retried later, sent or failed', async () => {
    const db = await freshDb();
    storeInbound(db, msg('a', { chatId: '-5', platformMessageId: '11' }));
    const item = claimNext(db)!;
    completeItem(db, { queueId: item.queueId, messageId: item.messageId!, reply: 'r', latencyMs: 1 });
    expect(dueDeliveries(db)).toEqual([{ messageId: 1, reply: 'r', attempts: 0, partsSent: 0, platform: 'telegram', chatId: '-5', platformMessageId: '11' }]);
    retryDelivery(db, 1, '429', Date.now() + 60_000);
    expect(dueDeliveries(db)).toEqual([]);
    expect(dueDeliveries(db, Date.now() + 61_000)).toMatchObject([{ messageId: 1, attempts: 1 }]);
    // Parts of a split reply sent before the failure are remembered for the next attempt.
    markPartsDelivered(db, 1, 2);
    expect(dueDeliveries(db, Date.now() + 61_000)).toMatchObject([{ messageId: 1, partsSent: 2 }]);
    markDelivered(db, 1);
    expect(db.prepare('SELECT delivery_status, delivery_attempts, delivery_error, delivered_at IS NOT NULL AS at FROM messages').get()).toEqual({
      delivery_status: 'sent',
      delivery_attempts: 2,
      delivery_error: null,
      at: 1,
    });
    failDelivery(db, 1, 'blocked');
    expect(db.prepare('SELECT delivery_status FROM messages').get()).toEqual({ delivery_status: 'failed' });
  });

  it('counts a reply delivered by being stored (a local message) as sent at once: the delivery worker never sees it', async () => {
    const db = await freshDb();
    storeInbound(db, { platform: 'local', platformUserId: 'ops', username: 'ops', text: 'hello' });
    storeInbound(db, msg('b', { chatId: '-5' }));
    const local = claimNext(db)!;
    completeItem(db, { queueId: local.queueId, messageId: local.messageId!, reply: 'hi', latencyMs: 1, deliveredByStoring: true });
    const remote = claimNext(db)!;
    completeItem(db, { queueId: remote.queueId, messageId: remote.messageId!, reply: 'r', latencyMs: 1 });
    expect(db.prepare('SELECT id, delivery_status, delivery_attempts, delivered_at IS NOT NULL AS at FROM messages ORDER BY id').all()).toEqual([
      { id: 1, delivery_status: 'sent', delivery_attempts: 1, at: 1 },
      { id: 2, delivery_status: 'pending', delivery_attempts: 0, at: 0 },
    ]);
    expect(dueDeliveries(db).map((d) => d.messageId)).toEqual([2]);
  });
});
