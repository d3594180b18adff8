import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { startTelegramServer, type TelegramServer } from '../helpers/telegram-server.js';
import { tempDir } from '../helpers/temp.js';
import { botTokenConflicts } from '../../src/instances/bot-token.js';
import { FAST_ENV, startRuntime, updateSettings } from '../runtime/harness.js';

const TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
const OTHER_TOKEN = '7100482211:AAHw2pQe9Lk4Zx7Cv1Bn5Mm8Rt3Yu6Io0Pa';

let home: string;
let telegram: TelegramServer;
beforeAll(async () => {
  home = await tempDir('animus-bottoken');
  telegram = await startTelegramServer({ token: TOKEN });
});
afterAll(async () => {
  await telegram.close();
});

async function bot(token: string, enabled = true) {
  const agent = await deployTestAgent(home, { mode: 'echo', env: { TELEGRAM_BOT_TOKEN: token, TELEGRAM_API_ROOT: telegram.url } });
  await updateSettings(agent.paths, (s) => {
    s.plugins.telegram_bot.enabled = enabled;
  });
  return agent;
}

describe('one poller per bot token in a home', () => {
  it('`animus start` refuses an agent whose bot token a running agent polls, naming it, and starts nothing', async () => {
    const running = await bot(TOKEN);
    const runtime = startRuntime(running.paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'telegram bot polling');
    const copy = await bot(TOKEN);

    const human = await runCli(['start', copy.id], { home });
    expect(human.code).toBe(4);
    const stderr = human.stderr.trim().split('\n');
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toContain(`${running.id} (running, pid ${runtime.pid}) already polls Telegram with this TELEGRAM_BOT_TOKEN`);
    expect(stderr[0]).toContain(`give ${copy.id} a bot token of its own`);
    expect(human.stderr + human.stdout).not.toContain(TOKEN);

    const machine = await runCli(['start', copy.id, '--json'], { home });
    expect(machine.code).toBe(4);
    expect(json(machine)).toEqual([expect.objectContaining({ id: copy.id, outcome: 'failed', code: 'EEXISTS' })]);
  });

  it('refuses the second of two agents with one token started together; other tokens and disabled bots are fine', async () => {
    const a = await bot(OTHER_TOKEN);
    const b = await bot(OTHER_TOKEN);
    const off = await bot(OTHER_TOKEN, false);
    const own = await bot('7200991133:AAGt5Rw8Qe2Ty6Ui9Op3As7Df1Gh4Jk0Lz');
    const conflicts = await botTokenConflicts(home, [a.paths, b.paths, off.paths, own.paths]);
    expect([...conflicts.keys()]).toEqual([b.id]);
    expect(conflicts.get(b.id)).toMatch(new RegExp(`^${a.id} \\(started by this command\\) already polls Telegram`));
  });
});
