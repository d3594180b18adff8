import type { Database, Statement } from 'better-sqlite3';
import { sqlTimestamp } from './inbound.js';
import { preparedFor } from './statements.js';

/**
 * The runtime's queue transitions, each one statement or one transaction:
 *
 *   pending --claim--> processing --complete--> completed   (reply stored, delivery pending)
 *                                 --retry----> pending with available_at in the future
 *                                 --fail-----> failed (last_error kept)
 *                                 --release--> pending (clean shutdown: the attempt is not counted)
 *   processing left by a crash --recover--> pending, or failed once its attempts are used up
 *
 * Delivery of a reply is tracked on its message row (delivery_status pending → sent |
 * failed | skipped) and retried on its own, never by asking the agent again; the replies
 * to one chat go out one after another, in the order they were stored.
 * Times in available_at / claimed_at / delivery_due_at are ms since the epoch.
 */

export interface ClaimedItem {
  queueId: number;
  /** Attempts including this one. */
  attempts: number;
  messageId: number | null;
  text: string | null;
  lettaUserId: number | null;
  platform: string | null;
  platformUserId: string | null;
  username: string | null;
  displayName: string | null;
  chatId: string | null;
  lettaBlockId: string | null;
  lettaIdentityId: string | null;
}

export interface Usage {
  promptTokens?: number | null;
  completionTokens?: number | null;
  totalTokens?: number | null;
}

export interface Completion {
  queueId: number;
  messageId: number;
  reply: string;
  latencyMs: number;
  usage?: Usage;
  /** No reply to send (empty answer, or nothing to send it to): delivery is `skipped`. */
  skipDelivery?: boolean;
  /**
   * The reply is delivered by being stored: a local message's (`animus send`) is read from
   * this row, so it is `sent` at once instead of waiting for the delivery worker to say so
   * in a second write.
   */
  deliveredByStoring?: boolean;
  /** The run's stop reason (messages.stop_reason). */
  stopReason?: string | null;
  now?: number;
}

export interface DeliveryItem {
  messageId: number;
  reply: string;
  attempts: number;
  /** Parts of a split reply already delivered by an earlier attempt (a retry sends the rest). */
  partsSent: number;
  platform: string | null;
  chatId: string | null;
  platformMessageId: string | null;
}

interface Statements {
  claim: Statement;
  resume: Statement;
  load: Statement;
  nextDue: Statement;
  complete: Statement;
  completeMessage: Statement;
  retry: Statement;
  fail: Statement;
  release: Statement;
  stale: Statement;
  dueDeliveries: Statement;
  nextDelivery: Statement;
  delivered: Statement;
  partsDelivered: Statement;
  retryDelivery: Statement;
  failDelivery: Statement;
  deferDelivery: Statement;
  moveChat: Statement;
}

/** The oldest due pending item: read in id order through idx_queue_claim (no sort of the backlog). */
export const OLDEST_DUE_SQL = "SELECT id FROM queue WHERE status = 'pending' AND COALESCE(available_at, 0) <= @now ORDER BY id LIMIT 1";

/**
 * The first pending reply of each chat: the only one of the chat that may be sent. Replies to
 * one chat go out in the order they were stored whatever the pacing, retries and deferrals did
 * to their due times (a later reply due first would otherwise overtake an earlier one); a reply
 * that failed for good or was sent no longer holds the chat. A chat is the platform and the
 * chat id (the same numeric id on two platforms is two chats). Local replies, delivered at once
 * and never deferred, and a reply without a chat wait on none: each is its own group (an
 * integer m.id never equals a text chat key). One pass over the pending rows through
 * idx_messages_delivery, never over the delivered ones.
 */
const FIRST_IN_CHAT_SQL = `
  SELECT MIN(h.id) FROM messages h LEFT JOIN platform_profiles hp ON hp.id = h.platform_profile_id
  WHERE h.delivery_status = 'pending'
  GROUP BY COALESCE(CASE WHEN hp.platform <> 'local' THEN hp.platform || ' ' || COALESCE(h.platform_chat_id, hp.platform_user_id) END, h.id)`;

const statements = preparedFor((db): Statements => ({
  claim: db.prepare(`
    UPDATE queue SET status = 'processing', claimed_at = @now, attempts = COALESCE(attempts, 0) + 1, updated_at = @ts
    WHERE id = (${OLDEST_DUE_SQL})
    RETURNING id, attempts, message_id`),
  resume: db.prepare(`
    UPDATE queue SET status = 'processing', claimed_at = @now, updated_at = @ts WHERE id = @id AND status IN ('pending', 'processing')
    RETURNING id, attempts, message_id`),
  load: db.prepare(`
    SELECT m.message AS text, COALESCE(m.letta_user_id, q.letta_user_id) AS lettaUserId, p.platform, p.platform_user_id AS platformUserId,
           p.username, p.display_name AS displayName, COALESCE(m.platform_chat_id, p.platform_user_id) AS chatId, u.letta_block_id AS lettaBlockId, u.letta_identity_id AS lettaIdentityId
    FROM queue q LEFT JOIN messages m ON m.id = q.message_id
    LEFT JOIN platform_profiles p ON p.id = m.platform_profile_id
    LEFT JOIN letta_users u ON u.id = COALESCE(m.letta_user_id, q.letta_user_id)
    WHERE q.id = ?`),
  nextDue: db.prepare("SELECT MIN(COALESCE(available_at, 0)) AS due FROM queue WHERE status = 'pending'"),
  complete: db.prepare("UPDATE queue SET status = 'completed', claimed_at = NULL, last_error = NULL, updated_at = ? WHERE id = ?"),
  completeMessage: db.prepare(`
    UPDATE messages SET agent_response = @reply, processed = 1, latency_ms = @latency, prompt_tokens = @prompt, completion_tokens = @completion,
      total_tokens = @total, stop_reason = @stopReason, delivery_status = @delivery, delivery_attempts = @deliveryAttempts, delivery_due_at = @now, delivery_error = NULL,
      delivered_at = @deliveredAt
    WHERE id = @id`),
  retry: db.prepare("UPDATE queue SET status = 'pending', claimed_at = NULL, available_at = ?, last_error = ?, updated_at = ? WHERE id = ? AND status = 'processing'"),
  fail: db.prepare("UPDATE queue SET status = 'failed', claimed_at = NULL, last_error = ?, updated_at = ? WHERE id = ? AND status = 'processing'"),
  release: db.prepare(
    "UPDATE queue SET status = 'pending', claimed_at = NULL, attempts = MAX(COALESCE(attempts, 1) - 1, 0), updated_at = ? WHERE id = ? AND status = 'processing'",
  ),
  // An item whose agent request is still open (a run going on, an approval held) is resumed, never requeued.
  stale: db.prepare(`SELECT id, COALESCE(attempts, 0) AS attempts FROM queue q WHERE status = 'processing' AND COALESCE(claimed_at, 0) <= ? AND id != ?
    AND NOT EXISTS (SELECT 1 FROM agent_requests r WHERE r.queue_id = q.id AND r.outcome IN ('sending', 'running', 'awaiting_approval'))`),
  dueDeliveries: db.prepare(`
    SELECT m.id AS messageId, m.agent_response AS reply, COALESCE(m.delivery_attempts, 0) AS attempts, COALESCE(m.delivery_parts, 0) AS partsSent, p.platform,
           COALESCE(m.platform_chat_id, p.platform_user_id) AS chatId, m.platform_message_id AS platformMessageId
    FROM messages m LEFT JOIN platform_profiles p ON p.id = m.platform_profile_id
    WHERE m.id IN (${FIRST_IN_CHAT_SQL}) AND COALESCE(m.delivery_due_at, 0) <= ? ORDER BY m.id LIMIT ?`),
  // Only a chat's first reply counts: a later one due sooner cannot go before it.
  nextDelivery: db.prepare(`SELECT MIN(COALESCE(delivery_due_at, 0)) AS due FROM messages WHERE id IN (${FIRST_IN_CHAT_SQL})`),
  delivered: db.prepare("UPDATE messages SET delivery_status = 'sent', delivery_attempts = COALESCE(delivery_attempts, 0) + 1, delivery_error = NULL, delivered_at = ? WHERE id = ?"),
  partsDelivered: db.prepare('UPDATE messages SET delivery_parts = ? WHERE id = ?'),
  retryDelivery: db.prepare('UPDATE messages SET delivery_attempts = COALESCE(delivery_attempts, 0) + 1, delivery_due_at = ?, delivery_error = ? WHERE id = ?'),
  failDelivery: db.prepare("UPDATE messages SET delivery_status = 'failed', delivery_attempts = COALESCE(delivery_attempts, 0) + 1, delivery_error = ? WHERE id = ?"),
  deferDelivery: db.prepare('UPDATE messages SET delivery_due_at = ? WHERE id = ?'),
  moveChat: db.prepare(`
    UPDATE messages SET platform_chat_id = @to
    WHERE platform_chat_id = @from AND (delivery_status IS NULL OR delivery_status = 'pending')
      AND platform_profile_id IN (SELECT id FROM platform_profiles WHERE platform = @platform)`),
}));

/** Claims the oldest due pending item (one statement, so two claimers can never take the same row). */
export function claimNext(db: Database, now: number = Date.now()): ClaimedItem | undefined {
  const s = statements(db);
  const row = s.claim.get({ now, ts: sqlTimestamp(new Date(now)) }) as { id: number; attempts: number; message_id: number | null } | undefined;
  return row ? loadItem(db, row) : undefined;
}

/**
 * Takes up an item whose agent request is still open (its run goes on, or an approval
 * is held) without counting a new attempt; undefined when the item is no longer
 * pending or processing (deleted, flushed or failed by an operator meanwhile).
 */
export function resumeItem(db: Database, queueId: number, now: number = Date.now()): ClaimedItem | undefined {
  const row = statements(db).resume.get({ id: queueId, now, ts: sqlTimestamp(new Date(now)) }) as { id: number; attempts: number; message_id: number | null } | undefined;
  return row ? loadItem(db, row) : undefined;
}

function loadItem(db: Database, row: { id: number; attempts: number; message_id: number | null }): ClaimedItem {
  const s = statements(db);
  const detail = (s.load.get(row.id) ?? {}) as Partial<ClaimedItem>;
  return {
    queueId: row.id,
    attempts: row.attempts,
    messageId: row.message_id,
    text: detail.text ?? null,
    lettaUserId: detail.lettaUserId ?? null,
    platform: detail.platform ?? null,
    platformUserId: detail.platformUserId ?? null,
    username: detail.username ?? null,
    displayName: detail.displayName ?? null,
    chatId: detail.chatId ?? null,
    lettaBlockId: detail.lettaBlockId ?? null,
    lettaIdentityId: detail.lettaIdentityId ?? null,
  };
}

/** When the earliest pending item becomes due (ms), or undefined when none is pending. */
export function nextDueAt(db: Database): number | undefined {
  const row = statements(db).nextDue.get() as { due: number | null };
  return row.due ?? undefined;
}

/** Stores the reply on the message and completes the queue item, in one transaction. */
export function completeItem(db: Database, done: Completion): void {
  const s = statements(db);
  const now = done.now ?? Date.now();
  const delivery = done.skipDelivery || done.reply.trim() === '' ? 'skipped' : done.deliveredByStoring ? 'sent' : 'pending';
  db.transaction(() => {
    s.completeMessage.run({
      id: done.messageId,
      reply: done.reply,
      latency: Math.round(done.latencyMs),
      prompt: done.usage?.promptTokens ?? null,
      completion: done.usage?.completionTokens ?? null,
      total: done.usage?.totalTokens ?? null,
      stopReason: done.stopReason ?? null,
      delivery,
      deliveryAttempts: delivery === 'sent' ? 1 : 0,
      deliveredAt: delivery === 'sent' ? sqlTimestamp(new Date(now)) : null,
      now,
    });
    s.complete.run(sqlTimestamp(new Date(now)), done.queueId);
  })();
}

/** Puts a failed item back with a due time, so the worker moves on to other items meanwhile. */
export function retryItem(db: Database, queueId: number, error: string, availableAt: number): void {
  statements(db).retry.run(availableAt, error, sqlTimestamp(), queueId);
}

export function failItem(db: Database, queueId: number, error: string): void {
  statements(db).fail.run(error, sqlTimestamp(), queueId);
}

/** Returns an item whose request was abandoned by a clean shutdown: due at once, attempt not counted. */
export function releaseItem(db: Database, queueId: number): void {
  statements(db).release.run(sqlTimestamp(), queueId);
}

export interface RecoveryResult {
  requeued: number[];
  failed: number[];
}

/**
 * Items left `processing` by a runtime that died: back to pending, or failed when the
 * crashed attempts already used up the item's tries (a message that kills the runtime
 * every time must not keep killing it).
 */
export function recoverStale(db: Database, options: { maxAttempts: number; claimedBefore: number; exceptId?: number }): RecoveryResult {
  const s = statements(db);
  const result: RecoveryResult = { requeued: [], failed: [] };
  db.transaction(() => {
    const rows = s.stale.all(options.claimedBefore, options.exceptId ?? -1) as Array<{ id: number; attempts: number }>;
    for (const row of rows) {
      if (row.attempts >= options.maxAttempts) {
        s.fail.run(`gave up after ${row.attempts} attempts: the runtime stopped while processing this item`, sqlTimestamp(), row.id);
        result.failed.push(row.id);
      } else {
        s.retry.run(0, 'recovered after the runtime stopped while processing it', sqlTimestamp(), row.id);
        result.requeued.push(row.id);
      }
    }
  }).immediate();
  return result;
}

/** Replies due now, in stored order, at most one per chat: its first pending reply (see FIRST_IN_CHAT_SQL). */
export function dueDeliveries(db: Database, now: number = Date.now(), limit = 20): DeliveryItem[] {
  return statements(db).dueDeliveries.all(now, limit) as DeliveryItem[];
}

/** When the next reply that may be sent becomes due (a chat's first pending one), or undefined when none is pending. */
export function nextDeliveryAt(db: Database): number | undefined {
  const row = statements(db).nextDelivery.get() as { due: number | null };
  return row.due ?? undefined;
}

export function markDelivered(db: Database, messageId: number): void {
  statements(db).delivered.run(sqlTimestamp(), messageId);
}

/** Records that the first `parts` parts of a split reply went out, before the next is sent. */
export function markPartsDelivered(db: Database, messageId: number, parts: number): void {
  statements(db).partsDelivered.run(parts, messageId);
}

export function retryDelivery(db: Database, messageId: number, error: string, dueAt: number): void {
  statements(db).retryDelivery.run(dueAt, error, messageId);
}

/** Sends a reply later without counting an attempt (the platform's pacing, not a failure). */
export function deferDelivery(db: Database, messageId: number, dueAt: number): void {
  statements(db).deferDelivery.run(dueAt, messageId);
}

/** A chat that moved (a Telegram group upgraded to a supergroup): its unanswered and unsent messages now answer to the new id. */
export function moveChatDeliveries(db: Database, platform: string, from: string, to: string): number {
  return statements(db).moveChat.run({ platform, from, to }).changes;
}

export function failDelivery(db: Database, messageId: number, error: string): void {
  statements(db).failDelivery.run(error, messageId);
}
