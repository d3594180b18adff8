import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelegramServer as Peer } from 'telegram-test-api/lib/telegramServer.js';
import { deployTestAgent } from '../helpers/agents.js';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { tempDir } from '../helpers/temp.js';
import { FAST_ENV, startRuntime, updateSettings } from './harness.js';
import { freePort } from '../helpers/ports.js';

/**
 * The round trip against a second Bot API peer that animus's authors did not write:
 * the npm `telegram-test-api` emulator. It differs from Telegram in ways the runtime
 * must survive: getUpdates answers at once and ignores offset, limit and
 * allowed_updates (each update is handed out once), it has no getWebhookInfo (500),
 * and it never answers 409.
 */
// Its module.exports is the class itself (its types say `default`).
const TelegramServer = createRequire(import.meta.url)('telegram-test-api') as typeof Peer;

const BOT_TOKEN = '7300551199:AAEk4Lm7Nb2Vc5Xz8Qw1Er6Ty9Ui3Op0As';
const API_KEY = 'sk-let-4f9a1c2e8b7d';

let home: string;
let letta: LettaServer;
let peer: Peer;

beforeAll(async () => {
  home = await tempDir('animus-tgtestapi');
  letta = await startLettaServer({ apiKey: API_KEY });
  peer = new TelegramServer({ host: '127.0.0.1', port: await freePort() });
  await peer.start();
});

afterAll(async () => {
  await peer.stop();
  await letta.close();
});

describe('runtime against telegram-test-api', () => {
  it("carries a user's message to the agent and the agent's reply back to the chat", async () => {
    const agent = await deployTestAgent(home, { mode: 'live', endpoint: `${letta.url}/v1`, apiKey: API_KEY, env: { TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_ROOT: peer.config.apiURL } });
    await updateSettings(agent.paths, (s) => {
      s.queue_refresh = 0.05;
      s.plugins.telegram_bot.enabled = true;
    });
    letta.reply = (text) => `Noted (${text.length} chars).`;
    // Its getUpdates never waits: the floor is what keeps the runtime from spinning.
    const runtime = startRuntime(agent.paths, { ...FAST_ENV, TELEGRAM_POLL_FLOOR_MS: '200' });
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');

    const client = peer.getClient(BOT_TOKEN, { userId: 4711, chatId: 4711, firstName: 'Ida', userName: 'ida', timeout: 20_000 });
    await client.sendMessage(client.makeMessage('what did I say yesterday?'));
    const updates = await client.getUpdates();
    const input = '[Username: @ida, Telegram ID: 4711] what did I say yesterday?';
    expect(updates.result.map((u: { message: { chat_id: unknown; text: string } }) => [String(u.message.chat_id), u.message.text])).toEqual([['4711', `Noted (${input.length} chars).`]]);
    await runtime.waitForLog((l) => l.msg === 'reply delivered');
    // Handed out once despite the ignored offset: one item in, one reply out.
    expect(runtime.logs.filter((l) => l.msg === 'telegram message queued')).toHaveLength(1);
    expect(runtime.logs.filter((l) => l.level === 'error')).toEqual([]);
    expect(runtime.stdout()).not.toContain(BOT_TOKEN);
  });
});
