import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { defaultSettings } from '../../src/config/settings.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { createLogger, type LogLevel } from '../../src/runtime/logger.js';
import type { MtprotoAdapter, UserMessage } from '../../src/runtime/plugins/mtproto-adapter.js';
import { createTelegramUserPlugin } from '../../src/runtime/plugins/telegram-user.js';
import { gramJsAdapter, type GramJs } from '../../src/runtime/plugins/mtproto-adapter.js';
import { DeliveryError, type PluginContext } from '../../src/runtime/plugins/types.js';
import { readRuntimeState, RuntimeStateWriter } from '../../src/instances/runtime-state.js';

/**
 * An in-memory MTProto account: history per chat, live pushes, a sent log, scripted
 * failures. Like GramJS, it can send only to an entity in its cache, which a restart
 * empties and which dialogs and incoming messages fill.
 */
class FakeAccount implements MtprotoAdapter {
  history: UserMessage[] = [];
  sent: Array<{ chatId: string; text: string }> = [];
  connected = false;
  failConnect: Error | undefined;
  failDialogs: Error | undefined;
  /** Chats with a dialog on the server (what getDialogs returns). */
  dialogs = new Set<string>(['555']);
  private entities = new Set<string>();
  /** Scripted outcomes of the next sends: an error fails that send, undefined lets it through. */
  failSend: Array<Error | undefined> = [];
  catchUpCalls: Array<{ limit: number; since: number }> = [];
  private handlers: Array<(m: UserMessage) => void> = [];
  async connect() {
    if (this.failConnect) throw this.failConnect;
    this.connected = true;
  }
  async loadDialogs(limit: number) {
    if (this.failDialogs) throw this.failDialogs;
    const chats = [...this.dialogs].slice(0, limit);
    for (const chat of chats) this.entities.add(chat);
    return chats.length;
  }
  onMessage(handler: (m: UserMessage) => void) {
    this.handlers.push(handler);
  }
  push(message: UserMessage) {
    this.history.push(message);
    this.entities.add(message.chatId);
    for (const h of this.handlers) h(message);
  }
  async recentMessages(limit: number, since: number) {
    this.catchUpCalls.push({ limit, since });
    return this.history.filter((m) => m.date > since).slice(-limit);
  }
  async sendMessage(chatId: string, text: string) {
    const failure = this.failSend.shift();
    if (failure) throw failure;
    // GramJS's words when the peer is not in its entity cache (client/users.js getInputEntity).
    if (!this.entities.has(chatId)) throw new Error(`Could not find the input entity for ${JSON.stringify({ userId: chatId })}.`);
    this.sent.push({ chatId, text });
  }
  async disconnect() {
    this.connected = false;
  }
}

const message = (id: number, text: string, date: number, fields: Partial<UserMessage> = {}): UserMessage => ({
  id: String(id),
  chatId: '555',
  chatType: 'private',
  senderId: '555',
  senderIsBot: false,
  username: 'dora',
  displayName: 'Dora',
  text,
  date,
  ...fields,
});

async function setup() {
  const dir = await tempDir('animus-tguser');
  const db = openDatabase(`${dir}/animus.db`, { create: true });
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
    state: new RuntimeStateWriter(dir),
  };
  const texts = () => (db.prepare('SELECT message FROM messages ORDER BY id').all() as Array<{ message: string }>).map((r) => r.message);
  return { db, dir, ctx, logs, texts, settings, wakes: () => wakes };
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

  it('never passes on Telegram login codes (777000), bots, or by default groups and channels; groups with allow_groups', async () => {
    const { ctx, logs, texts, settings } = await setup();
    const account = new FakeAccount();
    const plugin = createTelegramUserPlugin(ctx, () => account);
    await plugin.start();
    const now = Math.floor(Date.now() / 1000);
    account.push(message(1, 'Login code: 48213. Do not give this code to anyone', now, { chatId: '777000', senderId: '777000', username: null, displayName: 'Telegram' }));
    account.push(message(2, 'I am a bot', now, { chatId: '9001', senderId: '9001', senderIsBot: true }));
    account.push(message(3, 'group chatter', now, { chatId: '-4001', chatType: 'group', senderId: '556' }));
    account.push(message(4, 'channel post', now, { chatId: '-100777', chatType: 'channel', senderId: '-100777' }));
    account.push(message(5, 'hello from a person', now));
    expect(texts()).toEqual(['hello from a person']);
    expect(JSON.stringify(logs)).not.toContain('48213');
    expect(logs.filter((l) => l.msg.startsWith('telegram user message ignored')).map((l) => l.msg)).toEqual([
      'telegram user message ignored: from Telegram (777000): login codes and notices never reach the agent',
      'telegram user message ignored: from a bot',
      'telegram user message ignored: in a group (plugins.telegram_user.allow_groups is off)',
      'telegram user message ignored: a channel post',
    ]);
    settings.plugins.telegram_user.allow_groups = true;
    account.push(message(6, 'group question', now, { chatId: '-4001', chatType: 'group', senderId: '556' }));
    account.push(message(7, 'Your new login code: 99120', now, { chatId: '777000', senderId: '777000' }));
    expect(texts()).toEqual(['hello from a person', 'group question']);
  });

  it('applies the same filter to what it catches up on after downtime', async () => {
    const { ctx, db, texts } = await setup();
    const now = Math.floor(Date.now() / 1000);
    const first = new FakeAccount();
    await createTelegramUserPlugin(ctx, () => first).start();
    first.push(message(1, 'before', now - 100));
    const again = new FakeAccount();
    again.history = [message(2, 'Login code: 11111', now - 50, { chatId: '777000', senderId: '777000' }), message(3, 'missed', now - 40)];
    await createTelegramUserPlugin(ctx, () => again).start();
    expect(texts()).toEqual(['before', 'missed']);
    expect(db.prepare("SELECT COUNT(*) AS n FROM messages WHERE message LIKE '%11111%'").get()).toEqual({ n: 0 });
  });

  it('fills the entity cache at start, so a reply by user id works after a restart', async () => {
    const { ctx, logs } = await setup();
    const signal = new AbortController().signal;
    const target = { messageId: 1, chatId: '555', replyTo: null, partsSent: 0, partSent: () => {} };
    // The restarted account has seen nobody yet; its dialogs include the person being answered.
    const account = new FakeAccount();
    const plugin = createTelegramUserPlugin(ctx, () => account);
    await plugin.start();
    await plugin.deliver(target, 'the reply to a message stored before the restart', signal);
    expect(account.sent).toEqual([{ chatId: '555', text: 'the reply to a message stored before the restart' }]);
    expect(logs).toContainEqual(expect.objectContaining({ msg: 'telegram user dialogs loaded (replies by user id work)', dialogs: 1 }));

    // Without its dialogs the library cannot resolve the id: the failure is retryable, and the start said why.
    const blind = new FakeAccount();
    blind.failDialogs = new Error('FLOOD_WAIT_5');
    const second = createTelegramUserPlugin(ctx, () => blind);
    await second.start();
    expect(logs.some((l) => l.level === 'warn' && l.msg.startsWith('telegram user dialogs could not be loaded'))).toBe(true);
    await expect(second.deliver(target, 'x', signal)).rejects.toMatchObject({ retryable: true, message: expect.stringContaining('Could not find the input entity') });
  });

  it('records its connection in runtime-state.json for health, and clears it when stopped', async () => {
    const { ctx, dir } = await setup();
    const broken = new FakeAccount();
    broken.failConnect = new Error('AUTH_KEY_UNREGISTERED');
    const plugin = createTelegramUserPlugin(ctx, () => broken);
    await plugin.start();
    expect(readRuntimeState(dir)?.sections.telegram_user).toMatchObject({ status: 'error', message: 'cannot connect: AUTH_KEY_UNREGISTERED' });
    await plugin.stop();
    const fine = createTelegramUserPlugin(ctx, () => new FakeAccount());
    await fine.start();
    expect(readRuntimeState(dir)?.sections.telegram_user).toMatchObject({ status: 'ok', message: 'connected' });
    await fine.stop();
    expect(readRuntimeState(dir)?.sections.telegram_user).toBeUndefined();
  });
});

describe('GramJS adapter', () => {
  it('sends plain text: GramJS is told not to read Markdown, and its own parser then keeps the text as it is', async () => {
    const calls: Array<{ entity: unknown; params: Record<string, unknown> }> = [];
    class Client {
      session = { save: () => '' };
      async connect() {}
      addEventHandler() {}
      async getDialogs() {
        return [{ isUser: true }];
      }
      async sendMessage(entity: unknown, params: Record<string, unknown>) {
        calls.push({ entity, params });
      }
    }
    const gram = { TelegramClient: Client, StringSession: class {}, NewMessage: class {}, Logger: class {} } as unknown as GramJs;
    const adapter = gramJsAdapter({ apiId: 1, apiHash: 'h', session: 's' }, async () => gram);
    await adapter.connect();
    expect(await adapter.loadDialogs(200)).toBe(1);
    const text = 'use *stars* and _underscores_ and [brackets](x)';
    await adapter.sendMessage('555', text);
    expect(calls).toEqual([{ entity: '555', params: { message: text, parseMode: false } }]);
    const { _parseMessageText } = (await import('telegram/client/messageParse.js')) as unknown as { _parseMessageText(c: unknown, t: string, p: unknown): Promise<[string, unknown[]]> };
    expect(await _parseMessageText({ parseMode: undefined }, text, calls[0]!.params.parseMode)).toEqual([text, []]);
  });
});
