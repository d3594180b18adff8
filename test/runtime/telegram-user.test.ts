import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { defaultSettings } from '../../src/config/settings.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import type { MtprotoAdapter, UserMessage } from '../../src/runtime/plugins/mtproto-adapter.js';
import { createTelegramUserPlugin } from '../../src/runtime/plugins/telegram-user.js';
import { DeliveryError, type PluginContext } from '../../src/runtime/plugins/types.js';

/** An in-memory MTProto account: history per chat, live pushes, a sent log, scripted failures. */
class FakeAccount implements MtprotoAdapter {
  history: UserMessage[] = [];
  sent: Array<{ chatId: string; text: string }> = [];
  connected = false;
  failConnect: Error | undefined;
  /** Scripted outcomes of the next sends: an error fails that send, undefined lets it through. */
  failSend: Array<Error | undefined> = [];
  catchUpCalls: Array<{ limit: number; since: number }> = [];
  private handlers: Array<(m: UserMessage) => void> = [];
  async connect() {
    if (this.failConnect) throw this.failConnect;
    this.connected = true;
  }
  onMessage(handler: (m: UserMessage) => void) {
    this.handlers.push(handler);
  }
  push(message: UserMessage) {
    this.history.push(message);
    for (const h of this.handlers) h(message);
  }
  async recentMessages(limit: number, since: number) {
    this.catchUpCalls.push({ limit, since });
    return this.history.filter((m) => m.date > since).slice(-limit);
  }
  async sendMessage(chatId: string, text: string) {
    const failure = this.failSend.shift();
    if (failure) throw failure;
    this.sent.push({ chatId, text });
  }
  async disconnect() {
    this.connected = false;
  }
}

const message = (id: number, text: string, date: number): UserMessage => ({ id: String(id), chatId: '555', senderId: '555', username: 'dora', displayName: 'Dora', text, date });

async function setup() {
  const db = openDatabase(`${await tempDir('animus-tguser')}/animus.db`, { create: true });
  const logs: Array<{ level: LogLevel; msg: string }> = [];
  const settings = defaultSettings({ agentId: 'agent-1' });
  settings.plugins.telegram_user.enabled = true;
  settings.plugins.telegram_user.catch_up_limit = 10;
  let wakes = 0;
  const ctx: PluginContext = {
    agentDir: '/nonexistent',
    agentId: 'agent-1',
    db,
    env: { TELEGRAM_API_ID: '1', TELEGRAM_API_HASH: 'hash-abcdef', TELEGRAM_SESSION_STRING: 'session-abcdef' },
    logger: createLogger({ agent: 'agent-1', level: 'debug', secrets: [], write: (line) => logs.push(JSON.parse(line)) }),
    settings: () => settings,
    store: (m) => {
      wakes++;
      return storeInbound(db, m);
    },
    wake: () => {},
    redact: (t) => t,
  };
  const texts = () => (db.prepare('SELECT message FROM messages ORDER BY id').all() as Array<{ message: string }>).map((r) => r.message);
  return { db, ctx, logs, texts, wakes: () => wakes };
}

describe('telegram_user plugin', () => {
  it('stores live messages and, after downtime, catches up on what it missed without storing anything twice', async () => {
    const { ctx, texts } = await setup();
    const account = new FakeAccount();
    const now = Math.floor(Date.now() / 1000);
    // History from before the first start is not "missed": it must not flood the agent.
    account.history.push(message(1, 'ancient', now - 1000));
    const plugin = createTelegramUserPlugin(ctx, () => account);
    await plugin.start();
    expect(account.catchUpCalls).toEqual([]);
    account.push(message(2, 'live one', now - 100));
    expect(texts()).toEqual(['live one']);
    await plugin.stop();
    expect(account.connected).toBe(false);

    // While down: two messages arrive. On restart both are caught up, the stored one is not repeated.
    account.history.push(message(3, 'missed a', now - 50), message(4, 'missed b', now - 40));
    const again = new FakeAccount();
    again.history = account.history;
    const restarted = createTelegramUserPlugin(ctx, () => again);
    await restarted.start();
    expect(again.catchUpCalls).toEqual([{ limit: 10, since: now - 100 }]);
    expect(texts()).toEqual(['live one', 'missed a', 'missed b']);
    expect(restarted.health()).toEqual({ ok: true, detail: 'connected' });
  });

  it('delivers split replies and turns failures (FLOOD_WAIT, disconnected) into retryable delivery errors', async () => {
    const { ctx } = await setup();
    const account = new FakeAccount();
    const plugin = createTelegramUserPlugin(ctx, () => account);
    const signal = new AbortController().signal;
    const target = (messageId: number, partsSent = 0, parts: number[] = []) => ({ messageId, chatId: '555', replyTo: null, partsSent, partSent: (n: number) => void parts.push(n) });
    await expect(plugin.deliver(target(1), 'x', signal)).rejects.toBeInstanceOf(DeliveryError);
    await plugin.start();
    await plugin.deliver(target(1), `${'a'.repeat(4000)}\n${'b'.repeat(200)}`, signal);
    expect(account.sent.map((s) => s.text.length)).toEqual([4000, 200]);
    account.failSend.push(new Error('A wait of 17 seconds is required (caused by FLOOD_WAIT_17)'));
    await expect(plugin.deliver(target(2), 'hi', signal)).rejects.toMatchObject({ retryable: true, retryAfterMs: 17_000 });
  });

  it('records each part of a split reply, and a later attempt sends only the parts not yet sent', async () => {
    const { ctx } = await setup();
    const account = new FakeAccount();
    const plugin = createTelegramUserPlugin(ctx, () => account);
    await plugin.start();
    const signal = new AbortController().signal;
    const reply = `${'a'.repeat(4000)}\n${'b'.repeat(4000)}\n${'c'.repeat(100)}`;
    const recorded: number[] = [];
    account.failSend.push(undefined, new Error('disconnected'));
    await expect(plugin.deliver({ messageId: 3, chatId: '555', replyTo: null, partsSent: 0, partSent: (n) => void recorded.push(n) }, reply, signal)).rejects.toBeInstanceOf(DeliveryError);
    expect(recorded).toEqual([1]);
    expect(account.sent.map((s) => s.text[0])).toEqual(['a']);
    await plugin.deliver({ messageId: 3, chatId: '555', replyTo: null, partsSent: recorded.at(-1)!, partSent: (n) => void recorded.push(n) }, reply, signal);
    expect(account.sent.map((s) => s.text[0])).toEqual(['a', 'b', 'c']);
    expect(recorded).toEqual([1, 2, 3]);
  });

  it('reports a connection failure in its health and the log instead of crashing the runtime', async () => {
    const { ctx, logs } = await setup();
    const account = new FakeAccount();
    account.failConnect = new Error('AUTH_KEY_DUPLICATED');
    const plugin = createTelegramUserPlugin(ctx, () => account);
    await plugin.start();
    expect(plugin.health()).toEqual({ ok: false, detail: 'AUTH_KEY_DUPLICATED' });
    expect(logs.some((l) => l.level === 'error' && l.msg === 'telegram user account cannot connect')).toBe(true);
  });
});
