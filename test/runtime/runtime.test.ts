import Database from 'better-sqlite3';
import { copyFile, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { startTelegramServer, type TelegramServer } from '../helpers/telegram-server.js';
import { tempDir } from '../helpers/temp.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { pokeRuntime } from '../../src/runtime/wake-socket.js';
import type { AgentPaths } from '../../src/home/layout.js';
import { FAST_ENV, setEnv, startRuntime, updateSettings } from './harness.js';

const API_KEY = 'sk-let-4f9a1c2e8b7d';
const BOT_TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';

let home: string;
let letta: LettaServer;
let telegram: TelegramServer;

beforeAll(async () => {
  home = await tempDir('animus-runtime');
  letta = await startLettaServer({ apiKey: API_KEY });
  telegram = await startTelegramServer({ token: BOT_TOKEN });
});

beforeEach(() => {
  telegram.reset();
});

afterAll(async () => {
  await letta.close();
  await telegram.close();
});

async function liveAgent(extraEnv: Record<string, string> = {}) {
  const agent = await deployTestAgent(home, { mode: 'live', endpoint: `${letta.url}/v1`, apiKey: API_KEY, env: { TELEGRAM_API_ROOT: telegram.url, ...extraEnv } });
  await updateSettings(agent.paths, (s) => {
    s.queue_refresh = 0.05;
  });
  return agent;
}

function queueRows(paths: AgentPaths) {
  const db = new Database(paths.db, { readonly: true });
  try {
    return db.prepare('SELECT q.id, q.status, q.attempts, q.last_error, q.available_at, m.message, m.agent_response, m.processed, m.total_tokens, m.latency_ms, m.delivery_status, m.delivery_attempts, m.delivery_error FROM queue q LEFT JOIN messages m ON m.id = q.message_id ORDER BY q.id').all() as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}

function requestRows(paths: AgentPaths) {
  const db = new Database(paths.db, { readonly: true });
  try {
    return db.prepare('SELECT * FROM agent_requests ORDER BY id').all() as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}

/** Stores a message as `animus send` does and wakes the runtime. */
async function sendLocal(paths: AgentPaths, text: string): Promise<number> {
  const db = openDatabase(paths.db);
  try {
    const result = storeInbound(db, { platform: 'local', platformUserId: 'tester', username: 'tester', text });
    if (result.status !== 'queued') throw new Error(`not queued: ${result.status}`);
    return result.queueId;
  } finally {
    db.close();
    await pokeRuntime(paths.dir);
  }
}

/** Polls a condition on the database (the local plugin's delivery leaves no log line). */
async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('runtime as a child process', () => {
  it('carries a Telegram message to Letta and the reply back to Telegram, owner-only, with no secret in the logs', async () => {
    const { paths, id } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_OWNER_ID: '42' });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
      s.plugins.telegram_bot.require_owner = true;
    });
    letta.reply = (text) => `Hello! You said: ${text.length} chars`;
    const before = letta.messageRequests().length;
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');

    telegram.sendText({ userId: 7, username: 'stranger', text: 'let me in' });
    await runtime.waitForLog((l) => l.msg.includes('non-owner ignored'));
    const input = 'what is the weather?';
    telegram.sendText({ userId: 42, username: 'alice', text: input });
    const sent = await telegram.waitForSent(1);

    const expected = `[Username: @alice, Telegram ID: 42] ${input}`;
    const requests = letta.messageRequests().slice(before);
    expect(requests.map((r) => r.text)).toEqual([expected]);
    expect(requests[0]!.path).toBe(`/v1/agents/${id}/messages/stream`);
    // A background run on a stream: it goes on if the connection breaks, and says its id at once.
    expect(requests[0]!.body).toMatchObject({ background: true, include_pings: true, streaming: true, stream_tokens: false });
    expect(requests[0]!.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent.at(-1)).toMatchObject({ chat_id: '42', text: `Hello! You said: ${expected.length} chars`, parse_mode: 'Markdown' });

    await runtime.waitForLog((l) => l.msg === 'reply delivered');
    const rows = queueRows(paths);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'completed', attempts: 1, processed: 1, total_tokens: 15, delivery_status: 'sent', delivery_attempts: 1, message: input });
    expect(typeof rows[0]!.latency_ms).toBe('number');

    runtime.child.kill('SIGTERM');
    expect((await runtime.exited).code).toBe(0);
    const everything = runtime.stdout() + runtime.stderr();
    expect(everything).not.toContain(API_KEY);
    expect(everything).not.toContain(BOT_TOKEN);
    for (const line of runtime.logs) expect(line).toMatchObject({ agent: id, level: expect.stringMatching(/^(debug|info|warn|error)$/) });
  });

  it('keeps polling through getUpdates failures (409 conflict, dropped connection) and redeliveries store nothing twice', async () => {
    const { paths } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN });
    await updateSettings(paths, (s) => {
      s.message_mode = 'echo';
      s.plugins.telegram_bot.enabled = true;
    });
    telegram.failUpdates({ status: 409, description: 'Conflict: terminated by other getUpdates request' }, { status: 0, drop: true });
    const sentBefore = telegram.sent.length;
    const runtime = startRuntime(paths, FAST_ENV);
    const conflict = await runtime.waitForLog((l) => l.msg.startsWith('another program polls this bot token'));
    expect(conflict.msg).toContain('409');
    telegram.sendText({ userId: 5, username: 'eve', text: 'still there?', messageId: 777 });
    await telegram.waitForSent(sentBefore + 1);
    // The same Telegram message again (a redelivery after a crash): stored once.
    telegram.sendText({ userId: 5, username: 'eve', text: 'still there?', messageId: 777 });
    await runtime.waitForLog((l) => l.msg === 'telegram message already stored');
    expect(queueRows(paths)).toHaveLength(1);
    expect(telegram.sent.slice(sentBefore).map((m) => m.text)).toEqual(['[Username: @eve, Telegram ID: 5] still there?']);
  });

  it('in listen mode stores messages without calling Letta; a bad settings edit is refused; switching to live answers the backlog', async () => {
    const { paths } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.message_mode = 'listen';
    });
    const before = letta.messageRequests().length;
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'just listen');
    // Several idle polls pass (each 50 ms) while the item must stay untouched.
    await new Promise((r) => setTimeout(r, 400));
    expect(letta.messageRequests().length).toBe(before);
    expect(queueRows(paths)).toMatchObject([{ id: item, status: 'pending', attempts: 0, agent_response: null }]);

    const good = await readFile(paths.settings, 'utf8');
    await writeFile(paths.settings, good.replace('"listen"', '"shout"'));
    const refused = await runtime.waitForLog((l) => l.msg.startsWith('settings.json change refused'));
    expect(String(refused.problems)).toContain('message_mode');
    expect(letta.messageRequests().length).toBe(before);

    await writeFile(paths.settings, good.replace('"listen"', '"live"'));
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item);
    await waitFor(() => queueRows(paths)[0]!.delivery_status === 'sent');
    expect(letta.messageRequests().length).toBe(before + 1);
    expect(queueRows(paths)[0]).toMatchObject({ status: 'completed', delivery_status: 'sent' });
  });

  it('retries a failing agent with backoff, moving on to other items meanwhile, then fails after max_retries', async () => {
    const { paths } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.max_retries = 2;
    });
    const before = letta.messageRequests().length;
    // First item: 500, then (while it waits a long backoff) the second item succeeds.
    letta.script({ status: 500 }, { reply: 'second answered' });
    const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_RETRY_BASE_MS: '3000' });
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const first = await sendLocal(paths, 'first');
    await runtime.waitForLog((l) => l.msg === 'agent request failed; will retry' && l.item === first);
    const second = await sendLocal(paths, 'second');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === second);
    const rows = queueRows(paths);
    expect(rows.find((r) => r.id === first)).toMatchObject({ status: 'pending', attempts: 1, last_error: expect.stringContaining('500') });
    expect(Number(rows.find((r) => r.id === first)!.available_at)).toBeGreaterThan(Date.now());
    expect(rows.find((r) => r.id === second)).toMatchObject({ status: 'completed', agent_response: 'second answered' });
    runtime.child.kill('SIGTERM');
    await runtime.exited;

    // Restarted with a short schedule and an outage: two more tries, then failed.
    letta.fallback = { status: 503 };
    try {
      const again = startRuntime(paths, FAST_ENV);
      const failed = await again.waitForLog((l) => l.msg === 'agent request failed; no retries left', 30_000);
      expect(failed.item).toBe(first);
      const requests = letta.messageRequests().slice(before).filter((r) => r.text!.endsWith('] first'));
      expect(requests).toHaveLength(3);
      expect(queueRows(paths).find((r) => r.id === first)).toMatchObject({ status: 'failed', attempts: 3, last_error: expect.stringContaining('503') });
    } finally {
      letta.fallback = undefined;
    }
  });

  it('waits for a run slower than letta.timeout_s, and follows a send whose answer timed out, never sending twice', async () => {
    const { paths, id } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.letta.timeout_s = 0.3;
    });
    const before = letta.messageRequests().length;
    // A run that thinks far longer than a call may take; then a POST whose answer comes too late (the run exists).
    letta.script({ delayMs: 1500, reply: 'worth the wait' }, { answerDelayMs: 1000, delayMs: 200, reply: 'found it' });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const slow = await sendLocal(paths, 'slow question');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === slow);
    const late = await sendLocal(paths, 'late answer');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === late);
    expect(runtime.logs.some((l) => l.msg.startsWith('the unanswered send had started a run') && l.item === late)).toBe(true);
    const requests = letta.messageRequests().slice(before);
    expect(requests).toHaveLength(2);
    expect(new Set(requests.map((r) => r.otid)).size).toBe(2);
    for (const r of requests) expect(letta.deliveriesOf(id, r.otid!)).toBe(1);
    expect(letta.maxConcurrentRuns).toBe(1);
    expect(queueRows(paths).map((r) => [r.status, r.attempts, r.agent_response])).toEqual([
      ['completed', 1, 'worth the wait'],
      ['completed', 1, 'found it'],
    ]);
  });

  it('finds a send the server took only after the runtime stopped waiting (a second look), never sending it twice', async () => {
    const { paths, id } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.letta.timeout_s = 0.3;
    });
    const before = letta.messageRequests().length;
    // A busy server: the POST is held 900 ms before the run is made, so the first look after the timeout sees nothing.
    letta.script({ acceptDelayMs: 900, reply: 'landed late' });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'busy server');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item, 20_000);
    expect(runtime.logs.some((l) => l.msg.startsWith('the unanswered send had started a run') && l.item === item)).toBe(true);
    const requests = letta.messageRequests().slice(before);
    expect(requests).toHaveLength(1);
    expect(letta.deliveriesOf(id, requests[0]!.otid!)).toBe(1);
    expect(queueRows(paths).map((r) => [r.status, r.attempts, r.agent_response])).toEqual([['completed', 1, 'landed late']]);
  });

  it('a write that fails as the reply is stored leaves the run open: it is read again, never sent again', async () => {
    const { paths, id } = await liveAgent();
    // The queue refuses to complete (a full disk, say) until the trigger goes; recovery looks every 200 ms meanwhile.
    const db = new Database(paths.db);
    db.exec("CREATE TRIGGER refuse_complete BEFORE UPDATE OF status ON queue WHEN NEW.status = 'completed' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END");
    const before = letta.messageRequests().length;
    const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_RECOVER_EVERY_MS: '200' });
    try {
      await runtime.waitForLog((l) => l.msg === 'runtime ready');
      const item = await sendLocal(paths, 'full disk');
      await runtime.waitForLog((l) => l.msg === 'queue worker error; retrying shortly' && String(l.error).includes('disk is full'));
      // Long enough for recovery to have requeued the item, were the run's end recorded without the item's.
      await new Promise((r) => setTimeout(r, 1500));
      db.exec('DROP TRIGGER refuse_complete');
      await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item, 20_000);
      const requests = letta.messageRequests().slice(before);
      expect(requests).toHaveLength(1);
      expect(letta.deliveriesOf(id, requests[0]!.otid!)).toBe(1);
      expect(runtime.logs.some((l) => l.msg === 'resuming the open agent request (not sending again)' && l.item === item)).toBe(true);
      expect(queueRows(paths).map((r) => [r.status, r.attempts])).toEqual([['completed', 1]]);
    } finally {
      db.close();
    }
  });

  it('fails a non-retryable agent error (401) at once', async () => {
    const { paths } = await liveAgent();
    await setEnv(paths, { AGENT_API_KEY: 'sk-wrong-key-987654' });
    const before = letta.messageRequests().length;
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'who am i');
    const line = await runtime.waitForLog((l) => l.msg === 'agent request failed; not retryable');
    expect(line).toMatchObject({ item, status: 401 });
    expect(letta.messageRequests().length).toBe(before + 1);
    // The {"error":{…}} shape reads as one line, with one prefix.
    expect(queueRows(paths)[0]).toMatchObject({ status: 'failed', attempts: 1, last_error: 'Letta answered 401: Invalid API key: The API key is not valid for this organization' });
    expect(runtime.stdout()).not.toContain('sk-wrong-key-987654');
  });

  it('retries a failed delivery (429 retry_after, not counted as a failure; dropped connection) without asking Letta again', async () => {
    const { paths } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
      s.plugins.telegram_bot.parse_mode = 'none';
    });
    letta.reply = () => 'delivered eventually';
    const before = letta.messageRequests().length;
    const sentBefore = telegram.sent.length;
    telegram.failSend({ status: 429, retryAfter: 1, description: 'Too Many Requests: retry after 1' }, { status: 0, drop: true });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    telegram.sendText({ userId: 99, username: 'bob', text: 'hi' });
    const waited = await runtime.waitForLog((l) => l.msg.startsWith('telegram asked to wait'));
    expect(waited).toMatchObject({ chat: '99', retry_after_s: 1 });
    await runtime.waitForLog((l) => l.msg === 'reply delivery failed; will retry');
    await telegram.waitForSent(sentBefore + 1);
    await runtime.waitForLog((l) => l.msg === 'reply delivered');
    expect(telegram.sent.at(-1)).toMatchObject({ chat_id: '99', text: 'delivered eventually' });
    // The next try came no sooner than Telegram asked.
    const sends = telegram.requests.filter((r) => r.method === 'sendMessage').slice(-3);
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(letta.messageRequests().length).toBe(before + 1);
    // The 429 is pacing, not a failure: the dropped connection and the success are the two attempts.
    expect(queueRows(paths)[0]).toMatchObject({ status: 'completed', delivery_status: 'sent', delivery_attempts: 2 });
  });

  it('loses nothing when SIGKILLed mid-run: the restarted runtime follows the same run instead of sending again', async () => {
    const { paths, id } = await liveAgent();
    const before = letta.messageRequests().length;
    letta.script({ delayMs: 2500, reply: 'still the first run' });
    const first = startRuntime(paths, FAST_ENV);
    await first.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'survive this');
    await letta.waitForRequests(before + 1);
    await waitFor(() => requestRows(paths).some((r) => r.run_id !== null));
    expect(queueRows(paths)[0]).toMatchObject({ status: 'processing', attempts: 1 });
    first.child.kill('SIGKILL');
    await first.exited;

    const second = startRuntime(paths, FAST_ENV);
    await second.waitForLog((l) => l.msg.startsWith('resuming the open agent request') && l.item === item);
    await second.waitForLog((l) => l.msg === 'item completed' && l.item === item);
    await waitFor(() => queueRows(paths)[0]!.delivery_status === 'sent');
    const rows = queueRows(paths);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'completed', attempts: 1, processed: 1, delivery_status: 'sent', agent_response: 'still the first run' });
    expect(letta.messageRequests().length).toBe(before + 1);
    expect(letta.deliveriesOf(id, letta.messageRequests().at(-1)!.otid!)).toBe(1);
    expect(requestRows(paths).map((r) => r.outcome)).toEqual(['replied']);
  });

  it('sends each message as one background stream and reads its reply from it: no polling while the stream holds', async () => {
    const { paths, id } = await liveAgent();
    const before = letta.requests.length;
    letta.script({ reply: 'first' }, { reply: 'second', delayMs: 300 });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    for (const text of ['one', 'two']) {
      const item = await sendLocal(paths, text);
      await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item);
    }
    const calls = letta.requests.slice(before).map((r) => `${r.method} ${r.path.replace(id, '{agent}')}`);
    // At start the runtime looks for runs left going and for an approval left pending; then one request a message.
    expect(calls.filter((c) => !c.startsWith('GET /v1/runs/active') && !c.startsWith('GET /v1/agents/{agent}/messages'))).toEqual(['POST /v1/agents/{agent}/messages/stream', 'POST /v1/agents/{agent}/messages/stream']);
    expect(queueRows(paths).map((r) => [r.status, r.agent_response, r.total_tokens])).toEqual([
      ['completed', 'first', 15],
      ['completed', 'second', 15],
    ]);
    expect(requestRows(paths).map((r) => [r.outcome, r.stop_reason, typeof r.run_id])).toEqual([
      ['replied', 'end_turn', 'string'],
      ['replied', 'end_turn', 'string'],
    ]);
    runtime.child.kill('SIGTERM');
    await runtime.exited;
  });

  it('a stream that breaks off or goes silent mid-run: the same run is followed by polling, never sent twice', async () => {
    const { paths, id } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.letta.timeout_s = 0.4;
    });
    const before = letta.messageRequests().length;
    // Broken after the run was named; then a run that thinks past the call timeout with no ping in between.
    letta.script({ dropMidStream: true, delayMs: 400, reply: 'after the break' }, { delayMs: 1200, reply: 'after the silence' });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    for (const text of ['broken', 'silent']) {
      const item = await sendLocal(paths, text);
      await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item, 15_000);
    }
    expect(runtime.logs.filter((l) => l.msg === "the run's stream broke off; following the run by polling").map((l) => /silent/.test(String(l.error)))).toEqual([false, true]);
    const requests = letta.messageRequests().slice(before);
    expect(requests).toHaveLength(2);
    for (const r of requests) expect(letta.deliveriesOf(id, r.otid!)).toBe(1);
    expect(letta.maxConcurrentRuns).toBe(1);
    expect(queueRows(paths).map((r) => [r.status, r.attempts, r.agent_response])).toEqual([
      ['completed', 1, 'after the break'],
      ['completed', 1, 'after the silence'],
    ]);
    runtime.child.kill('SIGTERM');
    await runtime.exited;
  });

  it('cancels a run that goes on past letta.run_timeout_s and sends the message again later, one run at a time', async () => {
    const { paths, id } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.letta.run_timeout_s = 1;
      s.max_retries = 2;
    });
    const before = letta.requests.length;
    letta.script({ delayMs: 4000, reply: 'too late' }, { reply: 'in time' });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'take your time');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item, 20_000);
    const calls = letta.requests.slice(before);
    const cancel = calls.find((r) => r.path === `/v1/agents/${id}/messages/cancel`);
    const posts = calls.filter((r) => r.text !== undefined);
    expect(posts).toHaveLength(2);
    const [first, second] = requestRows(paths);
    expect(cancel?.body).toEqual({ run_ids: [first!.run_id] });
    expect(letta.runs.get(first!.run_id as string)).toMatchObject({ status: 'cancelled' });
    expect(second!.run_id).not.toBe(first!.run_id);
    // The second send went out only once the cancelled run had ended.
    expect(letta.maxConcurrentRuns).toBe(1);
    expect(queueRows(paths).find((r) => r.id === item)).toMatchObject({ status: 'completed', attempts: 2, agent_response: 'in time' });
    expect(requestRows(paths).map((r) => [r.outcome, r.stop_reason])).toEqual([
      ['retry', 'cancelled'],
      ['replied', 'end_turn'],
    ]);
    runtime.child.kill('SIGTERM');
    await runtime.exited;
  });

  it('on SIGTERM leaves the run going on Letta, exits 0, and answers the item from that run at the next start', async () => {
    const { paths } = await liveAgent();
    const before = letta.messageRequests().length;
    letta.script({ delayMs: 2500, reply: 'after the restart' });
    const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_STOP_GRACE_MS: '300' });
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'slow one');
    await letta.waitForRequests(before + 1);
    await waitFor(() => requestRows(paths).some((r) => r.run_id !== null));
    runtime.child.kill('SIGTERM');
    const exit = await runtime.exited;
    expect(exit.code).toBe(0);
    expect(runtime.logs.some((l) => l.msg === 'runtime stopping: the agent request stays open and is resumed at the next start')).toBe(true);
    expect(queueRows(paths)[0]).toMatchObject({ status: 'processing', attempts: 1 });
    const again = startRuntime(paths, FAST_ENV);
    await again.waitForLog((l) => l.msg === 'item completed' && l.item === item);
    expect(queueRows(paths)[0]).toMatchObject({ status: 'completed', attempts: 1, agent_response: 'after the restart' });
    expect(letta.messageRequests().length).toBe(before + 1);
  });

  it('splits long replies at 4096 and falls back to plain text when Telegram cannot parse the Markdown', async () => {
    const { paths } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
    });
    const long = `${'word '.repeat(1000)}\n\n${'more '.repeat(300)}`.trim();
    letta.script({ reply: long });
    const sentBefore = telegram.sent.length;
    telegram.failSend({ status: 400, description: "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 3" });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    telegram.sendText({ userId: 314, username: 'carol', text: 'tell me a long story' });
    await runtime.waitForLog((l) => l.msg === 'reply delivered');
    const sent = telegram.sent.slice(sentBefore);
    expect(sent.map((m) => m.text.length).every((n) => n <= 4096)).toBe(true);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    // Split at whitespace only: no word is cut and nothing is lost.
    expect(sent.map((m) => m.text).join(' ').split(/\s+/)).toEqual(long.split(/\s+/));
    // The rejected first chunk went again without parse_mode; the rest kept it.
    expect(sent[0]!.parse_mode).toBeUndefined();
    expect(sent[1]!.parse_mode).toBe('Markdown');
    const sends = telegram.requests.filter((r) => r.method === 'sendMessage').slice(-3);
    expect(sends.map((r) => r.params.parse_mode)).toEqual(['Markdown', undefined, 'Markdown']);
  });

  it('runs on a database a later animus migrated further (an agent rolled back to an older runtime)', async () => {
    const { paths } = await liveAgent();
    const db = new Database(paths.db);
    db.exec('ALTER TABLE messages ADD COLUMN from_the_future TEXT');
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    letta.reply = () => 'still here';
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const item = await sendLocal(paths, 'are you there?');
    await waitFor(() => queueRows(paths).some((r) => r.id === item && r.status === 'completed' && r.agent_response === 'still here'));
    runtime.child.kill('SIGTERM');
    expect((await runtime.exited).code).toBe(0);
    const after = new Database(paths.db, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    after.close();
  });

  it('a split reply cut short by a failure goes on after a restart from the part that failed, sending none twice', async () => {
    const { paths } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
      s.plugins.telegram_bot.parse_mode = 'none';
    });
    const parts = ['alpha', 'bravo', 'charlie'].map((word) => `${word} `.repeat(500).trim());
    letta.script({ reply: parts.join('\n\n') });
    const sentBefore = telegram.sent.length;
    // The first part goes out, the second is refused for a minute: the runtime stops meanwhile.
    telegram.failSend({ status: 200 }, { status: 429, retryAfter: 60 });
    const first = startRuntime(paths, FAST_ENV);
    await first.waitForLog((l) => l.msg === 'telegram bot polling');
    telegram.sendText({ userId: 315, username: 'dave', text: 'three parts please' });
    await first.waitForLog((l) => l.msg.startsWith('telegram asked to wait'));
    first.child.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    expect(telegram.sent.slice(sentBefore).map((m) => m.text.split(' ')[0])).toEqual(['alpha']);

    // The minute has passed: due now.
    const db = new Database(paths.db);
    db.prepare("UPDATE messages SET delivery_due_at = 0 WHERE delivery_status = 'pending'").run();
    db.close();
    const second = startRuntime(paths, FAST_ENV);
    await second.waitForLog((l) => l.msg === 'reply delivered');
    second.child.kill('SIGTERM');
    await second.exited;
    expect(telegram.sent.slice(sentBefore).map((m) => m.text)).toEqual(parts);
  });

  it("per-user memory: an identity and block on first contact, sender_id sent, a lost block made again, a failed detach done before the next request", async () => {
    const { paths, id } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.letta.attach_user_block = true;
      s.max_retries = 0;
    });
    letta.reply = (text) => `echo: ${text}`;
    const from = letta.requests.length;
    const calls = () =>
      letta.requests
        .slice(from)
        .filter((r) => !r.path.startsWith('/v1/runs') && !(r.method === 'GET' && r.path.endsWith('/messages')))
        .map((r) => `${r.method} ${r.path.replace(id, '{agent}').replace(/block-[0-9a-f-]{36}/, 'block')}`);
    const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_BREAKER_THRESHOLD: '2' });
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const first = await sendLocal(paths, 'remember me');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === first);
    const db = () => new Database(paths.db, { readonly: true });
    const user = () => {
      const handle = db();
      try {
        return handle.prepare('SELECT letta_identity_id AS identity, letta_block_id AS block FROM letta_users').get() as { identity: string; block: string };
      } finally {
        handle.close();
      }
    };
    const made = user();
    expect(made.identity).toMatch(/^identity-/);
    expect(letta.identities.get(made.identity)).toMatchObject({ identifier_key: 'local-tester', name: '@tester' });
    expect(letta.messageRequests().at(-1)!.senderId).toBe(made.identity);
    await waitFor(() => letta.attached(id).length === 0);

    // The server lost the block: it is made again and the user still gets the answer.
    letta.deleteBlock(made.block);
    const second = await sendLocal(paths, 'do you still know me?');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === second);
    const remade = user();
    expect(remade.block).not.toBe(made.block);
    expect(letta.blocks.has(remade.block)).toBe(true);
    expect(queueRows(paths).find((r) => r.id === second)).toMatchObject({ status: 'completed', agent_response: expect.stringContaining('do you still know me?') });

    // A detach that fails is recorded and done before the next request goes out.
    await waitFor(() => letta.attached(id).length === 0);
    letta.memoryScript('detach', { status: 500, shape: 'error' });
    const third = await sendLocal(paths, 'third');
    await runtime.waitForLog((l) => l.msg === 'could not detach the user block; it is detached before the next request');
    const fourth = await sendLocal(paths, 'fourth');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === fourth);
    await waitFor(() => letta.attached(id).length === 0);
    expect(calls()).toEqual([
      'POST /v1/identities/',
      'POST /v1/blocks/',
      'PATCH /v1/agents/{agent}/core-memory/blocks/attach/block',
      'POST /v1/agents/{agent}/messages/stream',
      'PATCH /v1/agents/{agent}/core-memory/blocks/detach/block',
      'PATCH /v1/agents/{agent}/core-memory/blocks/attach/block',
      'GET /v1/blocks/block',
      'POST /v1/blocks/',
      'PATCH /v1/agents/{agent}/core-memory/blocks/attach/block',
      'POST /v1/agents/{agent}/messages/stream',
      'PATCH /v1/agents/{agent}/core-memory/blocks/detach/block',
      'PATCH /v1/agents/{agent}/core-memory/blocks/attach/block',
      'POST /v1/agents/{agent}/messages/stream',
      'PATCH /v1/agents/{agent}/core-memory/blocks/detach/block',
      'PATCH /v1/agents/{agent}/core-memory/blocks/detach/block',
      'PATCH /v1/agents/{agent}/core-memory/blocks/attach/block',
      'POST /v1/agents/{agent}/messages/stream',
      'PATCH /v1/agents/{agent}/core-memory/blocks/detach/block',
    ]);
    expect(queueRows(paths).find((r) => r.id === third)).toMatchObject({ status: 'completed' });

    // One user's 4xx (Letta refuses to make their block) fails their message only: the breaker stays closed.
    letta.memoryScript('block', { status: 422, body: { detail: [{ loc: ['body', 'value'], msg: 'value too long' }] } }, { status: 422, body: { detail: [{ loc: ['body', 'value'], msg: 'value too long' }] } });
    const handle = openDatabase(paths.db);
    const strangers = ['ann', 'ben'].map((name) => {
      const stored = storeInbound(handle, { platform: 'local', platformUserId: name, username: name, text: `hi from ${name}` });
      if (stored.status !== 'queued') throw new Error('not queued');
      return stored.queueId;
    });
    handle.close();
    await pokeRuntime(paths.dir);
    for (const item of strangers) await runtime.waitForLog((l) => l.msg === 'agent request failed; not retryable' && l.item === item);
    const after = await sendLocal(paths, 'and me?');
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === after);
    expect(runtime.logs.some((l) => l.msg.startsWith('agent endpoint keeps failing'))).toBe(false);
    expect(queueRows(paths).find((r) => r.id === strangers[0])).toMatchObject({ status: 'failed', last_error: 'Letta answered 422: body.value: value too long' });
  });

  it('opens the circuit on an endpoint that keeps failing, sends nothing while open, probes and closes when it recovers', async () => {
    const { paths } = await liveAgent();
    await updateSettings(paths, (s) => {
      s.max_retries = 20;
    });
    const times: number[] = [];
    letta.onMessage = () => times.push(Date.now());
    letta.fallback = { status: 502 };
    try {
      const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_BREAKER_THRESHOLD: '2', ANIMUS_BREAKER_COOLDOWN_MS: '600' });
      await runtime.waitForLog((l) => l.msg === 'runtime ready');
      const item = await sendLocal(paths, 'are you there?');
      const open = await runtime.waitForLog((l) => l.msg.startsWith('agent endpoint keeps failing: circuit open'));
      const probe = await runtime.waitForLog((l) => l.msg.startsWith('circuit half-open'));
      const openAt = Date.parse(open.time);
      const probeAt = Date.parse(probe.time);
      expect(probeAt - openAt).toBeGreaterThanOrEqual(500);
      expect(times.filter((t) => t > openAt + 5 && t < probeAt - 5)).toEqual([]);
      letta.fallback = undefined;
      await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item, 30_000);
      expect(runtime.logs.some((l) => l.msg.startsWith('agent endpoint answering again: circuit closed'))).toBe(true);
    } finally {
      letta.fallback = undefined;
      letta.onMessage = undefined;
    }
  });

  it('starts a plugin enabled by a settings change without a restart', async () => {
    const { paths } = await liveAgent({ TELEGRAM_BOT_TOKEN: BOT_TOKEN });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    expect(runtime.logs.some((l) => l.msg === 'telegram bot polling')).toBe(false);
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
    });
    const reloaded = await runtime.waitForLog((l) => l.msg === 'settings reloaded');
    expect(reloaded.changed).toEqual(['plugins.telegram_bot.enabled']);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
  });

  it('recovers an item stuck in processing while running (periodic recovery), even in listen mode', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'listen' });
    const runtime = startRuntime(paths, { ...FAST_ENV, ANIMUS_RECOVER_EVERY_MS: '100' });
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const db = openDatabase(paths.db);
    const stored = storeInbound(db, { platform: 'local', platformUserId: 'tester', text: 'stuck' });
    if (stored.status !== 'queued') throw new Error('not queued');
    // As a runtime that died mid-request long ago would have left it.
    db.prepare("UPDATE queue SET status = 'processing', attempts = 1, claimed_at = 0 WHERE id = ?").run(stored.queueId);
    db.close();
    await runtime.waitForLog((l) => l.msg.startsWith('item left processing') && l.item === stored.queueId);
    expect(queueRows(paths)[0]).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it('refuses a second runtime on the same folder with exit 78', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    const first = startRuntime(paths, FAST_ENV);
    await first.waitForLog((l) => l.msg === 'runtime ready');
    const second = startRuntime(paths, FAST_ENV);
    expect((await second.exited).code).toBe(78);
    expect(second.stderr().trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`another runtime \\(pid ${first.pid}\\) already serves`))]);
  });

  it('migrates a Broca-made database forward without losing rows, recovers its processing rows and answers the pending ones', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    await rm(paths.db, { force: true });
    const made = makeBrocaDatabase(paths.db);
    const runtime = startRuntime(paths, FAST_ENV);
    // Per user: 2 pending + 1 processing are answered; 2 users.
    await runtime.waitForLog(() => runtime.logs.filter((l) => l.msg === 'item completed').length === 6);
    const db = new Database(paths.db, { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(db.prepare('SELECT COUNT(*) AS n FROM messages').get()).toEqual({ n: made.messages });
      expect(db.prepare('SELECT COUNT(*) AS n FROM queue').get()).toEqual({ n: made.queue });
      expect(db.prepare('SELECT COUNT(*) AS n FROM letta_users').get()).toEqual({ n: made.users });
      const statuses = db.prepare('SELECT status, COUNT(*) AS n FROM queue GROUP BY status ORDER BY status').all();
      expect(statuses).toEqual([
        { status: 'completed', n: 8 },
        { status: 'failed', n: 2 },
        { status: 'flushed', n: 2 },
      ]);
      const answered = db.prepare("SELECT agent_response FROM messages WHERE message = 'hello 1.0'").get() as { agent_response: string };
      expect(answered.agent_response).toBe('[Username: @user1, Telegram ID: 1001] hello 1.0');
      expect(db.prepare("SELECT agent_response FROM messages WHERE message = 'hello 1.4'").get()).toEqual({ agent_response: 'reply 1.4' });
    } finally {
      db.close();
    }
  });
});

describe('runtime configuration errors', () => {
  const cases: Array<{ name: string; edit: (paths: AgentPaths) => Promise<void>; lines: RegExp[] }> = [
    {
      name: 'missing AGENT_ID and a placeholder key',
      edit: async (paths) => {
        const text = await readFile(paths.env, 'utf8');
        await writeFile(paths.env, text.replace(/^AGENT_ID=.*$/m, 'AGENT_ID=').replace(/^AGENT_API_KEY=.*$/m, 'AGENT_API_KEY=your_key_here'));
      },
      lines: [/^animus-runtime: AGENT_ID is missing/, /^animus-runtime: AGENT_API_KEY still holds a placeholder value/],
    },
    {
      name: 'unknown mode',
      edit: async (paths) => {
        const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
        settings.message_mode = 'shout';
        await writeFile(paths.settings, JSON.stringify(settings));
      },
      lines: [/^animus-runtime: settings.json: message_mode must be one of echo, listen, live$/],
    },
    {
      name: 'malformed settings.json',
      edit: (paths) => writeFile(paths.settings, '{"agent": '),
      lines: [/settings.json is not valid JSON/],
    },
    {
      name: 'malformed .env and a missing database',
      edit: async (paths) => {
        await writeFile(paths.env, `${await readFile(paths.env, 'utf8')}\nthis is not an assignment\n`);
        await rm(paths.db);
      },
      lines: [/\.env line \d+ is not KEY=VALUE/, /database .*animus.db is missing/],
    },
    {
      name: 'telegram bot enabled without a token',
      edit: (paths) =>
        updateSettings(paths, (s) => {
          s.plugins.telegram_bot.enabled = true;
        }).then(() => {}),
      lines: [/TELEGRAM_BOT_TOKEN is missing \(plugins.telegram_bot is enabled\)/],
    },
    {
      name: "DB_PATH pointing at another agent's database",
      edit: async (paths) => {
        await writeFile(paths.env, `${await readFile(paths.env, 'utf8')}DB_PATH=${paths.dir}-other/animus.db\n`);
      },
      lines: [/^animus-runtime: DB_PATH=\S+-other\/animus\.db in \S+\/\.env is outside the agent folder: remove it/],
    },
    {
      name: 'a settings.json that is a symlink and a database -wal that is a symlink',
      edit: async (paths) => {
        const elsewhere = `${paths.dir}.settings-elsewhere.json`;
        await copyFile(paths.settings, elsewhere);
        await rm(paths.settings);
        await symlink(elsewhere, paths.settings);
        await rm(`${paths.db}-wal`, { force: true });
        await symlink(elsewhere, `${paths.db}-wal`);
      },
      lines: [/settings\.json is a symbolic link \(to \S+\): animus never follows links in an agent folder/, /animus\.db-wal is a symbolic link/],
    },
  ];
  for (const testCase of cases) {
    it(`exits 78 with one line per problem: ${testCase.name}`, async () => {
      const { paths } = await deployTestAgent(home, { mode: 'live', endpoint: 'https://api.letta.com', apiKey: API_KEY });
      await testCase.edit(paths);
      const runtime = startRuntime(paths);
      expect((await runtime.exited).code).toBe(78);
      const lines = runtime.stderr().trim().split('\n');
      expect(lines).toHaveLength(testCase.lines.length);
      testCase.lines.forEach((pattern, i) => expect(lines[i]).toMatch(pattern));
      expect(runtime.stdout()).toBe('');
    });
  }

  it('finds its folder through ANIMUS_AGENT_DIR when started elsewhere', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    const other = await tempDir('animus-cwd');
    await copyFile(paths.settings, `${other}/settings.json`);
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [`${paths.clone}/main.js`], { cwd: other, env: { PATH: process.env.PATH, ANIMUS_AGENT_DIR: paths.dir, ANIMUS_LOG_STDOUT: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('runtime ready')) child.kill('SIGTERM');
    });
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(0);
    expect(out).toContain(paths.dir);
  });
});

describe('runtime against a Letta without background streams', () => {
  for (const route of ['no-route', 'no-redis'] as const) {
    it(`(${route}) says so once, sends each message async and polls, never sending one twice`, async () => {
      const old = await startLettaServer({ apiKey: API_KEY, streamRoute: route });
      try {
        const agent = await deployTestAgent(home, { mode: 'live', endpoint: `${old.url}/v1`, apiKey: API_KEY, env: {} });
        await updateSettings(agent.paths, (s) => {
          s.queue_refresh = 0.05;
        });
        old.script({ reply: 'polled one' }, { reply: 'polled two' });
        const runtime = startRuntime(agent.paths, FAST_ENV);
        await runtime.waitForLog((l) => l.msg === 'runtime ready');
        for (const text of ['a', 'b']) {
          const item = await sendLocal(agent.paths, text);
          await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === item);
        }
        expect(runtime.logs.filter((l) => l.msg.startsWith('Letta offers no background streams here'))).toHaveLength(1);
        const posts = old.requests.filter((r) => r.method === 'POST' && r.path.includes('/messages')).map((r) => r.path.replace(agent.id, '{agent}'));
        expect(posts).toEqual(['/v1/agents/{agent}/messages/stream', '/v1/agents/{agent}/messages/async', '/v1/agents/{agent}/messages/async']);
        for (const r of old.messageRequests()) if (r.otid) expect(old.deliveriesOf(agent.id, r.otid)).toBe(1);
        expect(queueRows(agent.paths).map((r) => [r.status, r.agent_response])).toEqual([
          ['completed', 'polled one'],
          ['completed', 'polled two'],
        ]);
        runtime.child.kill('SIGTERM');
        await runtime.exited;
      } finally {
        await old.close();
      }
    });
  }
});
