import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { openDatabase, type Database } from '../../src/store/database.js';
import { storeInbound, type InboundMessage } from '../../src/store/inbound.js';
import { claimNext, completeItem, deferDelivery, dueDeliveries, failDelivery, markDelivered, nextDeliveryAt, retryDelivery } from '../../src/store/work-queue.js';

/**
 * The order of one chat's replies, decided in the delivery query: whatever the pacer's
 * deferrals and the retries' backoff did to their due times, a chat's replies are handed
 * out one at a time, in the order they were stored, and other chats never wait on it.
 */
const T0 = 1_700_000_000_000;

async function freshDb(): Promise<Database> {
  return openDatabase(`${await tempDir('animus-delivery-order')}/animus.db`, { create: true });
}

/** Stores a message and the agent's reply to it (due at `at`), as the runtime does; returns the message id. */
function reply(db: Database, message: Omit<InboundMessage, 'text'>, text: string, at = T0): number {
  storeInbound(db, { ...message, text });
  const item = claimNext(db, at)!;
  completeItem(db, { queueId: item.queueId, messageId: item.messageId!, reply: `re: ${text}`, latencyMs: 1, now: at });
  return item.messageId!;
}

const dee = { platform: 'telegram', platformUserId: '71', username: 'dee' };
const fay = { platform: 'telegram', platformUserId: '72', username: 'fay' };
const due = (db: Database, now: number) => dueDeliveries(db, now).map((d) => d.reply);

describe('delivery order within a chat', () => {
  it("hands out only a chat's first pending reply, while another chat's goes at once", async () => {
    const db = await freshDb();
    const one = reply(db, dee, 'one');
    reply(db, dee, 'two');
    reply(db, fay, 'other');
    // The pacer deferred "one"; "two" is due earlier than it, but may not overtake it.
    deferDelivery(db, one, T0 + 1000);
    expect(due(db, T0)).toEqual(['re: other']);
    expect(nextDeliveryAt(db)).toBe(T0);
    markDelivered(db, dueDeliveries(db, T0)[0]!.messageId);
    // What the worker sleeps until is the first reply's time, not the second's (already past).
    expect(nextDeliveryAt(db)).toBe(T0 + 1000);
    expect(due(db, T0 + 999)).toEqual([]);
    expect(due(db, T0 + 1000)).toEqual(['re: one']);
    markDelivered(db, one);
    expect(due(db, T0 + 1000)).toEqual(['re: two']);
    expect(nextDeliveryAt(db)).toBe(T0);
  });

  it('keeps stored order for replies deferred to the same moment', async () => {
    const db = await freshDb();
    const ids = ['one', 'two', 'three'].map((text) => reply(db, dee, text));
    for (const id of ids) deferDelivery(db, id, T0 + 1000);
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) {
      const batch = dueDeliveries(db, T0 + 1000);
      expect(batch).toHaveLength(1);
      sent.push(batch[0]!.reply);
      markDelivered(db, batch[0]!.messageId);
    }
    expect(sent).toEqual(['re: one', 're: two', 're: three']);
    expect(nextDeliveryAt(db)).toBeUndefined();
  });

  it('holds a chat behind a reply waiting for a retry, and lets it go on once that reply failed for good', async () => {
    const db = await freshDb();
    const one = reply(db, dee, 'one');
    reply(db, dee, 'two');
    retryDelivery(db, one, 'Telegram answered 502', T0 + 8000);
    expect(due(db, T0 + 5000)).toEqual([]);
    expect(nextDeliveryAt(db)).toBe(T0 + 8000);
    failDelivery(db, one, 'Telegram answered 400: chat not found');
    expect(due(db, T0)).toEqual(['re: two']);
    expect(nextDeliveryAt(db)).toBe(T0);
  });

  it('orders a group by its chat, not by sender, and tells platforms and local replies apart', async () => {
    const db = await freshDb();
    const first = reply(db, { ...dee, chatId: '-100200' }, 'dee in the group');
    reply(db, { ...fay, chatId: '-100200' }, 'fay in the group');
    // The same numeric id through the user account is another chat.
    reply(db, { platform: 'telegram_user', platformUserId: '71', username: 'dee' }, 'dee to the account');
    reply(db, { platform: 'local', platformUserId: 'ops' }, 'local one');
    reply(db, { platform: 'local', platformUserId: 'ops' }, 'local two');
    deferDelivery(db, first, T0 + 1000);
    // Local replies are delivered at once and never deferred: both go in one batch.
    expect(due(db, T0)).toEqual(['re: dee to the account', 're: local one', 're: local two']);
    expect(due(db, T0 + 1000)).toEqual(['re: dee in the group', 're: dee to the account', 're: local one', 're: local two']);
  });

  it("keeps a Broca-era row without a chat id in its sender's chat", async () => {
    const db = await freshDb();
    const one = reply(db, dee, 'one');
    reply(db, dee, 'two');
    // Broca stored no chat id: the reply goes to the sender, which is the chat "two" is in.
    db.prepare('UPDATE messages SET platform_chat_id = NULL WHERE id = ?').run(one);
    deferDelivery(db, one, T0 + 1000);
    expect(due(db, T0)).toEqual([]);
    expect(dueDeliveries(db, T0 + 1000)).toMatchObject([{ messageId: one, chatId: '71' }]);
  });
});
