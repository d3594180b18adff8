import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBrocaFolder } from '../helpers/broca.js';
import { json, runCli } from '../helpers/cli.js';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { startTelegramServer, type TelegramServer } from '../helpers/telegram-server.js';
import { tempDir } from '../helpers/temp.js';
import { agentPaths } from '../../src/home/layout.js';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { FAST_ENV, startRuntime } from '../runtime/harness.js';
import type { AdoptReport } from '../../src/instances/adopt.js';

/**
 * Adopting a folder must keep what Broca did with it (Broca 3's behaviour, from
 * shared/README): the plugins it loaded run, its bot stays owner-only
 * (TELEGRAM_REQUIRE_OWNER defaults to true), its parse_mode is kept, per-user memory
 * is on; whatever cannot be carried over is named in the plan.
 */
const API_KEY = 'sk-let-4f9a1c2e8b7d';
const BOT_TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
const OWNER = 4242;

let root: string;
let letta: LettaServer;
let telegram: TelegramServer;

beforeAll(async () => {
  root = await tempDir('adopt-behaviour');
  letta = await startLettaServer({ apiKey: API_KEY });
  telegram = await startTelegramServer({ token: BOT_TOKEN });
});

afterAll(async () => {
  await letta.close();
  await telegram.close();
});

async function brocaHome(name: string, env: Record<string, string>, settings: Record<string, unknown>, plugins?: string[]) {
  const home = join(root, name);
  const agent = agentIdFromUuid('5b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3');
  await makeBrocaFolder(join(home, agent.id), root, { env, settings, plugins });
  return { home, agent, paths: agentPaths(home, agent) };
}

describe('adopt keeps what Broca did', () => {
  it('a Broca bot folder keeps running its bot, owner-only, MarkdownV2, with per-user memory: a stranger never reaches the agent', async () => {
    const { home, paths } = await brocaHome(
      'bot',
      { AGENT_ENDPOINT: `${letta.url}/v1`, AGENT_API_KEY: API_KEY, TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_OWNER_ID: String(OWNER), TELEGRAM_API_ROOT: telegram.url, TELEGRAM_BUFFER_DELAY: '5' },
      { agent: { id: '5b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3', name: 'Guide agent' }, message_processing: { mode: 'live', queue_refresh: 5, max_retries: 3 }, plugins: { telegram: { enabled: true, parse_mode: 'MarkdownV2' } } },
    );
    const plan = json<AdoptReport[]>(await runCli(['adopt', '--json'], { home }))[0]!;
    expect(plan.changes.join('\n')).toMatch(/Telegram bot on, owner-only, parse_mode MarkdownV2, per-user memory on/);
    expect(plan.warnings.join('\n')).toMatch(/does not read[^\n]*TELEGRAM_BUFFER_DELAY/);

    const applied = await runCli(['adopt', '--apply', '--json'], { home });
    expect(applied.code, applied.stderr).toBe(0);
    const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
    expect(settings.plugins).toMatchObject({ telegram_bot: { enabled: true, require_owner: true, parse_mode: 'MarkdownV2' }, telegram_user: { enabled: false } });
    expect(settings.letta.attach_user_block).toBe(true);

    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    const before = letta.messageRequests().length;
    telegram.sendText({ userId: 777, username: 'stranger', text: 'let me in' });
    await runtime.waitForLog((l) => l.msg.includes('non-owner ignored'));
    telegram.sendText({ userId: OWNER, username: 'owner', text: 'hello' });
    // Broca's backlog (pending rows of sanctum.db) is answered too; wait for the owner's reply among them.
    const ownerReply = async () => {
      for (let n = 1; ; n++) {
        const sent = await telegram.waitForSent(n);
        const reply = sent.find((m) => m.chat_id === String(OWNER));
        if (reply) return { sent, reply };
      }
    };
    const { sent, reply } = await ownerReply();
    const texts = letta.messageRequests().slice(before).map((r) => r.text);
    expect(texts).toContain(`[Username: @owner, Telegram ID: ${OWNER}] hello`);
    expect(texts.join('\n')).not.toContain('let me in');
    expect(sent.filter((m) => m.chat_id === '777')).toEqual([]);
    expect(reply).toMatchObject({ parse_mode: 'MarkdownV2' });
    // Per-user memory: a block was attached around the owner's request.
    expect(letta.requests.some((r) => /core-memory\/blocks\/attach\//.test(r.path))).toBe(true);
    runtime.child.kill('SIGTERM');
    expect((await runtime.exited).code).toBe(0);
  });

  it('TELEGRAM_REQUIRE_OWNER=false in Broca stays a bot that answers anyone', async () => {
    const { home, paths } = await brocaHome('open', { AGENT_ENDPOINT: 'https://api.letta.com', AGENT_API_KEY: API_KEY, TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_REQUIRE_OWNER: 'False' }, { message_mode: 'live', queue_refresh: 5 });
    expect((await runCli(['adopt', '--apply'], { home })).code).toBe(0);
    const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
    expect(settings.plugins.telegram_bot).toMatchObject({ enabled: true, require_owner: false });
  });

  it('names every value it cannot carry over and every variable the result misses', async () => {
    const { home, agent, paths } = await brocaHome(
      'gaps',
      { AGENT_ENDPOINT: 'https://api.letta.com', AGENT_API_KEY: API_KEY, TELEGRAM_BOT_TOKEN: BOT_TOKEN, ENABLE_IMAGE_HANDLING: 'false' },
      { message_mode: 'live', queue_refresh: 'fast', max_retries: 3, web_chat: { port: 8080 }, plugins: { telegram: { enabled: false, parse_mode: 'BBCode' }, discord: {} } },
    );
    const plan = json<AdoptReport[]>(await runCli(['adopt', '--json'], { home }))[0]!;
    const warnings = plan.warnings.join('\n');
    expect(warnings).toMatch(/not carried over[^\n]*queue_refresh="fast" \(invalid\)/);
    expect(warnings).toMatch(/not carried over[^\n]*plugins\.telegram\.enabled=false \(Broca has no such switch/);
    expect(warnings).toMatch(/not carried over[^\n]*plugins\.telegram\.parse_mode="BBCode"/);
    expect(warnings).toMatch(/not carried over[^\n]*plugins\.discord/);
    expect(warnings).toMatch(/not carried over[^\n]*web_chat/);
    expect(warnings).toMatch(/does not read[^\n]*ENABLE_IMAGE_HANDLING/);
    // Owner-only (Broca's default) without an owner: Broca's bot refused to start too; the plan says what to add.
    expect(warnings).toMatch(/will not start until \.env is fixed: owner-only mode needs TELEGRAM_OWNER_ID or TELEGRAM_OWNER_USERNAME/);
    expect(JSON.stringify(plan)).not.toContain(API_KEY);
    expect(JSON.stringify(plan)).not.toContain(BOT_TOKEN);

    expect((await runCli(['adopt', '--apply'], { home })).code).toBe(0);
    const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
    expect(settings).toMatchObject({ agent: { id: agent.id }, queue_refresh: 1, max_retries: 3, plugins: { telegram_bot: { enabled: true, require_owner: true, parse_mode: 'Markdown' } } });
  });

  it('a bot plugin folder without a token stays off and says so; the Telethon plugin in plugins/ runs as telegram_user', async () => {
    const { home, paths } = await brocaHome('user', { AGENT_ENDPOINT: 'https://api.letta.com', AGENT_API_KEY: API_KEY }, { message_mode: 'live' }, ['telegram_bot', 'telegram']);
    const plan = json<AdoptReport[]>(await runCli(['adopt', '--json'], { home }))[0]!;
    expect(plan.warnings.join('\n')).toMatch(/the Telegram bot \(no TELEGRAM_BOT_TOKEN/);
    expect(plan.warnings.join('\n')).toMatch(/TELEGRAM_API_ID is missing/);
    expect((await runCli(['adopt', '--apply'], { home })).code).toBe(0);
    const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
    expect(settings.plugins).toMatchObject({ telegram_bot: { enabled: false }, telegram_user: { enabled: true } });
  });
});
