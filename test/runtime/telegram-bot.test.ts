import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { startTelegramServer, type TelegramServer } from '../helpers/telegram-server.js';
import { tempDir } from '../helpers/temp.js';
import { runHealth } from '../../src/health/run-health.js';
import { readRuntimeState } from '../../src/instances/runtime-state.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { pokeRuntime } from '../../src/runtime/wake-socket.js';
import type { AgentPaths } from '../../src/home/layout.js';
import { FAST_ENV, startRuntime, updateSettings, type RuntimeProcess } from './harness.js';

/**
 * The bot plugin in a real runtime process against the Bot API stand-in, in the
 * situations Telegram really produces: a webhook left on the token, another poller,
 * a revoked token, messages without text, a group that becomes a supergroup, 429s for
 * one chat, a server that answers every poll at once.
 */
const BOT_TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';

let home: string;
let telegram: TelegramServer;

beforeAll(async () => {
  home = await tempDir('animus-tgbot');
  telegram = await startTelegramServer({ token: BOT_TOKEN });
});

beforeEach(() => {
  telegram.reset();
});

afterAll(async () => {
  await telegram.close();
});

async function botAgent(edit: (s: Parameters<Parameters<typeof updateSettings>[1]>[0]) => void = () => {}, apiRoot = telegram.url) {
  const agent = await deployTestAgent(home, { mode: 'echo', env: { TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_ROOT: apiRoot } });
  await updateSettings(agent.paths, (s) => {
    s.queue_refresh = 0.05;
    s.plugins.telegram_bot.enabled = true;
    s.plugins.telegram_bot.parse_mode = 'none';
    edit(s);
  });
  return agent;
}

const echo = (user: number, name: string, text: string) => `[Username: @${name}, Telegram ID: ${user}] ${text}`;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function telegramCheck(id: string) {
  const report = await runHealth({ home, ids: [id] });
  return report.agents[0]!.checks.find((c) => c.name === 'telegram');
}

function messages(paths: AgentPaths) {
  const db = new Database(paths.db, { readonly: true });
  try {
    return db.prepare('SELECT message, agent_response, processed, delivery_status, platform_chat_id FROM messages ORDER BY id').all() as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}

const lines = (runtime: RuntimeProcess, prefix: string) => runtime.logs.filter((l) => l.msg.startsWith(prefix));
const polls = (from: number) => telegram.requests.slice(from).filter((r) => r.method === 'getUpdates');

describe('telegram bot plugin against the Bot API stand-in', () => {
  it('reports a webhook left on the token with its fix, once, backs off, and answers once `animus telegram webhook delete` removed it', async () => {
    const { paths, id } = await botAgent();
    telegram.setWebhook('https://hooks.elsewhere.net/secret-path-8d1f');
    telegram.sendText({ userId: 42, username: 'alice', text: 'are you there?' });
    const from = telegram.requests.length;
    const runtime = startRuntime(paths, { ...FAST_ENV, TELEGRAM_CONFLICT_RETRY_MS: '200' });
    const line = await runtime.waitForLog((l) => l.msg.startsWith('a webhook is set on this bot token'));
    expect(line.level).toBe('error');
    expect(line.msg).toContain(`remove it with \`animus telegram webhook delete ${id}\``);
    expect(line.msg).toContain('https://hooks.elsewhere.net');
    expect(line.msg).not.toContain('secret-path');
    // Polled again, but backing off (each wait at least double the one before), and said once.
    await waitFor(() => polls(from).length >= 4, 'four refused polls');
    const at = polls(from).map((r) => r.at);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(200);
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(400);
    expect(lines(runtime, 'a webhook is set')).toHaveLength(1);
    expect(readRuntimeState(paths.dir)?.sections.telegram_bot).toMatchObject({ status: 'error', problem: 'webhook', bot: '@animus_stand_in_bot' });
    expect(await telegramCheck(id)).toMatchObject({ status: 'fail', message: expect.stringContaining(`animus telegram webhook delete ${id}`) });

    const deleted = await runCli(['telegram', 'webhook', 'delete', id, '--json'], { home });
    expect(deleted.code).toBe(0);
    expect(json(deleted)).toEqual({ agent: id, wasSet: true, origin: 'https://hooks.elsewhere.net', pendingUpdates: 1 });
    expect(telegram.webhook()).toBe('');
    // The message that waited at Telegram is answered.
    await telegram.waitForSent(1);
    expect(telegram.sent.map((m) => [m.chat_id, m.text])).toEqual([['42', echo(42, 'alice', 'are you there?')]]);
    await runtime.waitForLog((l) => l.msg === 'telegram answers the poll again');
    expect(await telegramCheck(id)).toMatchObject({ status: 'ok', message: expect.stringMatching(/^polling as @animus_stand_in_bot, last answer \d+ s ago$/) });

    const again = await runCli(['telegram', 'webhook', 'delete', id], { home });
    expect(again).toMatchObject({ code: 0, stdout: `no webhook is set on the bot token of ${id}: nothing to do` });
  });

  it('backs off from another poller on the token (409), says what to do once, and recovers', async () => {
    const { paths, id } = await botAgent();
    const conflict = { status: 409, description: 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running' };
    telegram.failUpdates(conflict, conflict, conflict);
    const runtime = startRuntime(paths, FAST_ENV);
    const line = await runtime.waitForLog((l) => l.msg.startsWith('another program polls this bot token'));
    expect(line.msg).toContain('give this agent a bot token of its own');
    await runtime.waitForLog((l) => l.msg === 'telegram answers the poll again');
    expect(lines(runtime, 'another program polls')).toHaveLength(1);
    telegram.sendText({ userId: 7, username: 'bo', text: 'hello' });
    await telegram.waitForSent(1);
    expect(await telegramCheck(id)).toMatchObject({ status: 'ok' });
  });

  it('stops the bot with one line when Telegram refuses the token (401), at start or later, and the rest of the runtime goes on', async () => {
    const { paths, id } = await botAgent();
    telegram.revokeToken();
    const from = telegram.requests.length;
    const runtime = startRuntime(paths, FAST_ENV);
    const line = await runtime.waitForLog((l) => l.msg.startsWith('telegram bot stopped'));
    expect(line).toMatchObject({ level: 'error', msg: `telegram bot stopped: Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized), it was revoked or mistyped: put the token from @BotFather in ${paths.env} and restart the agent` });
    expect(await telegramCheck(id)).toMatchObject({ status: 'fail', message: expect.stringContaining('401 Unauthorized') });
    // `animus send` still gets its answer; Telegram is not asked again.
    const db = openDatabase(paths.db);
    const stored = storeInbound(db, { platform: 'local', platformUserId: 'ops', username: 'ops', text: 'still alive?' });
    db.close();
    await pokeRuntime(paths.dir);
    await runtime.waitForLog((l) => l.msg === 'item completed' && stored.status === 'queued' && l.item === stored.queueId);
    expect(telegram.requests.slice(from).map((r) => r.method)).toEqual(['getMe']);
    expect(runtime.logs.filter((l) => l.level === 'error')).toHaveLength(1);
    expect(runtime.stdout()).not.toContain(BOT_TOKEN);
    runtime.child.kill('SIGTERM');
    await runtime.exited;

    // Revoked while polling: the same one line, and the poll loop ends.
    telegram.reset();
    const second = startRuntime(paths, FAST_ENV);
    await second.waitForLog((l) => l.msg === 'telegram bot polling');
    telegram.revokeToken();
    await second.waitForLog((l) => l.msg.startsWith('telegram bot stopped'));
    const after = telegram.requests.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(polls(after)).toHaveLength(0);
  });

  it('reads captions as text, answers other media with the media reply (stored as a placeholder), or passes the placeholder to the agent', async () => {
    const { paths } = await botAgent((s) => {
      s.plugins.telegram_bot.media_reply = 'Text only here, please.';
    });
    telegram.sendMedia({ userId: 51, username: 'cam', photo: [{ file_id: 'AgAD1', width: 90, height: 90 }], caption: 'look at this sunset' });
    telegram.sendMedia({ userId: 51, username: 'cam', voice: { file_id: 'AwAD2', duration: 3 } });
    const runtime = startRuntime(paths, FAST_ENV);
    await telegram.waitForSent(2);
    expect(telegram.sent.map((m) => m.text).sort()).toEqual([echo(51, 'cam', 'look at this sunset'), 'Text only here, please.'].sort());
    await waitFor(() => messages(paths).every((m) => m.delivery_status === 'sent'), 'both deliveries recorded');
    expect(messages(paths)).toEqual([
      expect.objectContaining({ message: 'look at this sunset', processed: 1, delivery_status: 'sent' }),
      expect.objectContaining({ message: '[voice message]', agent_response: 'Text only here, please.', processed: 1, delivery_status: 'sent' }),
    ]);
    expect(runtime.logs.some((l) => l.msg === 'telegram [voice message] stored and answered with the media reply (plugins.telegram_bot.media = reply)')).toBe(true);

    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.media = 'placeholder';
    });
    await runtime.waitForLog((l) => l.msg === 'settings reloaded');
    telegram.sendMedia({ userId: 51, username: 'cam', sticker: { file_id: 'CAAD3', emoji: '👍' } });
    await telegram.waitForSent(3);
    expect(telegram.sent.at(-1)!.text).toBe(echo(51, 'cam', '[sticker]'));
  });

  it('follows a group that became a supergroup: the service message moves its replies, and a send refused with migrate_to_chat_id goes to the new id', async () => {
    const { paths } = await botAgent();
    telegram.sendText({ userId: 71, username: 'gia', chatId: -4242, text: 'before the move' });
    telegram.migrateGroup(-4242, -1004242);
    telegram.sendText({ userId: 71, username: 'gia', chatId: -1004242, chatType: 'supergroup', text: 'after the move' });
    const runtime = startRuntime(paths, FAST_ENV);
    await telegram.waitForSent(2);
    expect(telegram.sent.map((m) => m.chat_id)).toEqual(['-1004242', '-1004242']);
    expect(telegram.requests.filter((r) => r.method === 'sendMessage').map((r) => String(r.params.chat_id))).not.toContain('-4242');
    await runtime.waitForLog((l) => l.msg.startsWith('telegram group became a supergroup') && l.from_chat === '-4242');

    // Telegram moved this one without the bot seeing the service message: the send says where.
    telegram.migrateGroup(-5151, -1005151, { announce: false });
    telegram.sendText({ userId: 72, username: 'hal', chatId: -5151, text: 'anyone?' });
    await telegram.waitForSent(3);
    expect(telegram.sent.at(-1)).toMatchObject({ chat_id: '-1005151', text: echo(72, 'hal', 'anyone?') });
    await waitFor(() => messages(paths).at(-1)!.delivery_status === 'sent', 'the delivery recorded');
    expect(messages(paths).at(-1)).toMatchObject({ platform_chat_id: '-1005151' });
  });

  it("waits a chat's retry_after (429) for that chat only: another chat's reply goes out meanwhile", async () => {
    const { paths } = await botAgent();
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    telegram.limitChat('61', { retryAfter: 5 });
    telegram.sendText({ userId: 61, username: 'ann', text: 'first' });
    await waitFor(() => telegram.limited.includes('61'), 'the 429 for chat 61');
    const limitedAt = telegram.requests.filter((r) => r.method === 'sendMessage').at(-1)!.at;
    telegram.sendText({ userId: 62, username: 'ben', text: 'second' });
    await telegram.waitForSent(1);
    expect(telegram.sent.map((m) => m.chat_id)).toEqual(['62']);
    await telegram.waitForSent(2);
    expect(telegram.sent.map((m) => m.chat_id)).toEqual(['62', '61']);
    expect(telegram.sent[1]!.at - limitedAt).toBeGreaterThanOrEqual(5000);
    expect(telegram.limited).toEqual(['61']);
  });
});

describe('telegram bot plugin pacing on the real clock', () => {
  it('keeps about a second between replies to one chat, while another chat is not held up', async () => {
    const { paths } = await botAgent();
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    // Four messages in one poll: three from one chat, then one from another.
    for (const text of ['one', 'two', 'three']) telegram.sendText({ userId: 71, username: 'dee', text });
    telegram.sendText({ userId: 72, username: 'fay', text: 'other' });
    await telegram.waitForSent(4, 20_000);
    const toDee = telegram.sent.filter((m) => m.chat_id === '71');
    const toFay = telegram.sent.find((m) => m.chat_id === '72')!;
    // Every reply arrives, in the order of the messages, however the pacer deferred them.
    expect(toDee.map((m) => m.text)).toEqual(['one', 'two', 'three'].map((t) => echo(71, 'dee', t)));
    // Unpaced, the three would leave within milliseconds. The pacer starts the third send at
    // least 2 s after the first; the stand-in sees each after a delay a loaded machine
    // stretches, so only the first send's delay can shorten what it sees: a bound of 1 s
    // holds unless that one request took over a second to arrive.
    expect(toDee[2]!.at - toDee[0]!.at).toBeGreaterThanOrEqual(1000);
    // The other chat's reply is not queued behind them.
    expect(telegram.sent.indexOf(toFay)).toBeLessThan(telegram.sent.indexOf(toDee[2]!));
  });
});

describe('telegram bot plugin against a server that answers every poll at once', () => {
  let eager: TelegramServer;
  beforeAll(async () => {
    eager = await startTelegramServer({ token: BOT_TOKEN, maxHoldMs: 0 });
  });
  afterAll(async () => {
    await eager.close();
  });

  it('keeps its floor between polls instead of polling in a tight loop', async () => {
    const { paths } = await botAgent(() => {}, eager.url);
    const runtime = startRuntime(paths, { ...FAST_ENV, TELEGRAM_POLL_FLOOR_MS: '250' });
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    await waitFor(() => eager.requests.filter((r) => r.method === 'getUpdates').length >= 6, 'six polls');
    const at = eager.requests.filter((r) => r.method === 'getUpdates').map((r) => r.at);
    // However slow the machine, n polls need at least (n - 1) floors between the first and the last start.
    const spanned = at.at(-1)! - at[0]!;
    expect(at.length - 1).toBeLessThanOrEqual(Math.floor(spanned / 250) + 1);
    eager.sendText({ userId: 81, username: 'eli', text: 'quick' });
    await eager.waitForSent(1);
  });
});
