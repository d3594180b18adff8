import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { startTelegramServer, type TelegramServer } from '../helpers/telegram-server.js';
import { tempDir } from '../helpers/temp.js';
import type { AgentPaths } from '../../src/home/layout.js';
import { FAST_ENV, startRuntime, updateSettings, type RuntimeProcess } from './harness.js';

/**
 * The crash test of the Letta lane: 200 Telegram messages through a slow Letta (each
 * run thinks 150 ms, longer than the 100 ms a call may take), the runtime (a real child
 * process) SIGKILLed 10 times at random moments. Nothing may be lost, no two runs may
 * ever overlap on the agent (the stand-in counts), and every message must reach Letta
 * once: a send whose answer a kill cut off is found again by its otid, never sent twice.
 * Replies delivered twice to the chat (a kill between Telegram's answer and recording
 * it) are counted and printed.
 */
const API_KEY = 'sk-let-4f9a1c2e8b7d';
const BOT_TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
const MESSAGES = 200;
const KILLS = 10;

let home: string;
let letta: LettaServer;
let telegram: TelegramServer;

beforeAll(async () => {
  home = await tempDir('animus-crash');
  letta = await startLettaServer({ apiKey: API_KEY, thinkMs: 150 });
  telegram = await startTelegramServer({ token: BOT_TOKEN });
});
afterAll(async () => {
  await letta.close();
  await telegram.close();
});

/** A small seeded generator: a failing run can be replayed with its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function progress(paths: AgentPaths) {
  const db = new Database(paths.db, { readonly: true });
  try {
    return db.prepare("SELECT COUNT(*) AS total, SUM(q.status = 'completed') AS completed, SUM(m.delivery_status = 'sent') AS delivered FROM queue q JOIN messages m ON m.id = q.message_id").get() as {
      total: number;
      completed: number | null;
      delivered: number | null;
    };
  } finally {
    db.close();
  }
}

describe('crash test', () => {
  it(`${MESSAGES} messages, a slow agent, ${KILLS} SIGKILLs at random moments: nothing lost, never two runs at once, each message sent once`, async () => {
    const seed = Number(process.env.ANIMUS_CRASH_SEED ?? Date.now() % 1_000_000);
    const next = random(seed);
    const { paths, id } = await deployTestAgent(home, { mode: 'live', endpoint: letta.url, apiKey: API_KEY, env: { TELEGRAM_API_ROOT: telegram.url, TELEGRAM_BOT_TOKEN: BOT_TOKEN } });
    await updateSettings(paths, (s) => {
      s.queue_refresh = 0.05;
      s.max_retries = 50;
      s.letta.timeout_s = 0.1;
      s.plugins.telegram_bot.enabled = true;
      s.plugins.telegram_bot.parse_mode = 'none';
    });
    letta.reply = (text) => `re: ${text.slice(text.indexOf('] ') + 2)}`;
    for (let i = 0; i < MESSAGES; i++) telegram.sendText({ userId: 5000 + i, username: `user${i}`, text: `message ${i}` });

    const env = { ...FAST_ENV, ANIMUS_RECOVER_EVERY_MS: '200', ANIMUS_RUN_POLL_MAX_MS: '50' };
    const runtimes: RuntimeProcess[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const runtime = startRuntime(paths, env);
      runtimes.push(runtime);
      await runtime.waitForLog((l) => l.msg === 'runtime ready', 30_000);
      // A random moment while it works: inside a run, a send, a poll, a delivery or a database write.
      await new Promise((r) => setTimeout(r, 150 + Math.floor(next() * 1500)));
      runtime.child.kill('SIGKILL');
      await runtime.exited;
    }
    const last = startRuntime(paths, env);
    runtimes.push(last);
    const deadline = Date.now() + 240_000;
    while (true) {
      const now = progress(paths);
      if (now.total === MESSAGES && now.completed === MESSAGES && now.delivered === MESSAGES) break;
      if (Date.now() > deadline) throw new Error(`not everything was answered (seed ${seed}): ${JSON.stringify(now)}\n${last.stdout().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    const logs = runtimes.flatMap((r) => r.logs);
    const otids = new Map<string, number>();
    for (const request of letta.messageRequests()) otids.set(request.otid!, (otids.get(request.otid!) ?? 0) + 1);
    const sentTwice = [...otids.keys()].filter((otid) => letta.deliveriesOf(id, otid) > 1);
    const followed = logs.filter((l) => l.msg.includes('unanswered send had started a run')).length;
    const resent = logs.filter((l) => l.msg === 'an unanswered send never reached Letta; sending it again').length;
    const perChat = new Map<string, number>();
    for (const message of telegram.sent) perChat.set(message.chat_id, (perChat.get(message.chat_id) ?? 0) + 1);
    const duplicatesToChat = [...perChat.values()].reduce((sum, n) => sum + (n - 1), 0);
    console.log(
      `crash test (seed ${seed}): ${MESSAGES} messages, ${KILLS} SIGKILLs; most runs at once on the agent: ${letta.maxConcurrentRuns}; ` +
        `messages that reached the agent twice: ${sentTwice.length}; sends cut off by a kill and found again by otid: ${followed}; ` +
        `sends cut off before Letta made a run (sent again): ${resent}; POSTs ${letta.messageRequests().length}; replies delivered twice to the chat: ${duplicatesToChat}`,
    );

    expect(progress(paths)).toEqual({ total: MESSAGES, completed: MESSAGES, delivered: MESSAGES });
    expect(letta.maxConcurrentRuns).toBe(1);
    expect(otids.size).toBe(MESSAGES);
    expect(sentTwice).toEqual([]);
    // Every chat got its answer; a kill between Telegram's answer and recording it can repeat at most one reply.
    expect(perChat.size).toBe(MESSAGES);
    expect(duplicatesToChat).toBeLessThanOrEqual(KILLS);
    for (const [chat, n] of perChat) expect(telegram.sent.find((m) => m.chat_id === chat)!.text, `chat ${chat} (${n})`).toBe(`re: message ${Number(chat) - 5000}`);
  }, 600_000);
});
