import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';
import { runHealth } from '../../src/health/run-health.js';
import { checkTelegram } from '../../src/health/telegram-check.js';
import { RuntimeStateWriter } from '../../src/instances/runtime-state.js';
import { startRuntime, updateSettings } from '../runtime/harness.js';

const NOW = Date.parse('2026-12-01T08:00:00Z');
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

describe('telegram health check (from what the runtime recorded)', () => {
  it('tells a fresh poll, a stale one, a recorded problem, a stopped runtime and nothing recorded apart', async () => {
    const dir = await tempDir('animus-tgcheck');
    expect(checkTelegram(dir, ['telegram_bot'], NOW)).toEqual({ name: 'telegram', status: 'unknown', message: 'nothing recorded: the runtime is not running' });
    const state = new RuntimeStateWriter(dir);
    state.set('telegram_bot', { status: 'ok', message: 'polling', bot: '@shop_bot', last_poll_ok_at: ago(30) });
    expect(checkTelegram(dir, ['telegram_bot'], NOW)).toEqual({ name: 'telegram', status: 'ok', message: 'polling as @shop_bot, last answer 30 s ago' });
    state.set('telegram_bot', { status: 'ok', message: 'polling', last_poll_ok_at: ago(900) });
    expect(checkTelegram(dir, ['telegram_bot'], NOW)).toMatchObject({ status: 'warn', message: 'no answer from Telegram for 900 s: see animus logs' });
    state.set('telegram_bot', { status: 'error', message: 'another program polls this bot token', problem: 'conflict' });
    state.set('telegram_user', { status: 'ok', message: 'connected' });
    expect(checkTelegram(dir, ['telegram_bot', 'telegram_user'], NOW)).toEqual({ name: 'telegram', status: 'fail', message: 'bot: another program polls this bot token; user account: connected' });
    // Written by a runtime that is gone (SIGKILL leaves the file): not believed.
    const file = `${dir}/runtime-state.json`;
    const { readFile } = await import('node:fs/promises');
    const recorded = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...recorded, pid: 2 ** 22 + 12345 }));
    expect(checkTelegram(dir, ['telegram_bot'], NOW)).toMatchObject({ status: 'unknown', message: `last recorded by a runtime that has stopped (pid ${2 ** 22 + 12345})` });
  });

  it('env: health fails a bot enabled without its token with the line the runtime refuses to start with', async () => {
    const home = await tempDir('animus-tgenv');
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
      s.plugins.telegram_bot.require_owner = true;
    });
    const runtime = startRuntime(paths);
    expect((await runtime.exited).code).toBe(78);
    const refused = runtime.stderr().trim().split('\n').map((line) => line.replace(/^animus-runtime: /, '').replace(/: set (it|one) in .*$/, ''));
    expect(refused).toEqual(['TELEGRAM_BOT_TOKEN is missing (plugins.telegram_bot is enabled)', 'owner-only mode needs TELEGRAM_OWNER_ID or TELEGRAM_OWNER_USERNAME']);
    const health = await runHealth({ home, ids: [id] });
    const env = health.agents[0]!.checks.find((c) => c.name === 'env')!;
    expect(env.status).toBe('fail');
    for (const problem of refused) expect(env.message).toContain(problem);
    // Health names the check of a plugin that is on, with nothing recorded (the runtime did not start).
    expect(health.agents[0]!.checks.find((c) => c.name === 'telegram')).toMatchObject({ status: 'unknown' });
  });
});
