import { readFile, stat } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';
import { parseEnv } from '../../src/config/env-file.js';
import { telegramLogin } from '../../src/runtime/telegram-login.js';
import type { LoginPrompts, MtprotoLogin } from '../../src/runtime/plugins/mtproto-adapter.js';

let home: string;
beforeAll(async () => {
  home = await tempDir('animus-tglogin');
});

const SESSION = '1BVtsOHgBu-fake-session-string-abcdefghijklmnop';

function fakeLogin(asked: string[], outcome: 'ok' | 'fail' = 'ok'): MtprotoLogin {
  return {
    async login(apiId, apiHash, prompts: LoginPrompts) {
      asked.push(`id:${apiId}`, `hash:${apiHash}`, `phone:${await prompts.phone()}`, `code:${await prompts.code()}`, `password:${await prompts.password()}`);
      if (outcome === 'fail') throw new Error('PHONE_CODE_INVALID');
      return SESSION;
    },
  };
}

const prompts = (asked: string[]) => ({
  apiId: async () => (asked.push('asked apiId'), '12345'),
  apiHash: async () => (asked.push('asked apiHash'), 'abcdef0123456789abcdef'),
  phone: async () => '+15550001111',
  code: async () => '22222',
  password: async () => 'pw',
});

describe('telegramLogin', () => {
  it('asks what the .env lacks, stores the session in the .env (0600) and keeps every other line', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo', env: { TELEGRAM_PHONE: '+15559998888' } });
    const before = await readFile(paths.env, 'utf8');
    const asked: string[] = [];
    const result = await telegramLogin({ home, id, prompts: prompts(asked), login: fakeLogin(asked) });
    expect(result).toEqual({ agent: id, envFile: paths.env, stored: ['TELEGRAM_API_ID', 'TELEGRAM_API_HASH', 'TELEGRAM_SESSION_STRING'] });
    expect(JSON.stringify(result)).not.toContain(SESSION);
    expect(asked).toEqual(['asked apiId', 'asked apiHash', 'id:12345', 'hash:abcdef0123456789abcdef', 'phone:+15559998888', 'code:22222', 'password:pw']);
    const after = await readFile(paths.env, 'utf8');
    const env = parseEnv(after, paths.env);
    expect(env).toMatchObject({ TELEGRAM_SESSION_STRING: SESSION, TELEGRAM_API_ID: '12345', TELEGRAM_API_HASH: 'abcdef0123456789abcdef', AGENT_ID: id });
    expect((await stat(paths.env)).mode & 0o777).toBe(0o600);
    // Only the three assignments changed.
    const changed = after.split('\n').filter((line) => !before.split('\n').includes(line));
    expect(changed.map((l) => l.split('=')[0])).toEqual(['TELEGRAM_API_ID', 'TELEGRAM_API_HASH', 'TELEGRAM_SESSION_STRING']);
  });

  it('changes nothing when the login fails', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo', env: { TELEGRAM_API_ID: '777', TELEGRAM_API_HASH: 'ffffeeee0000' } });
    const before = await readFile(paths.env, 'utf8');
    const asked: string[] = [];
    await expect(telegramLogin({ home, id, prompts: prompts(asked), login: fakeLogin(asked, 'fail') })).rejects.toMatchObject({
      code: 'EFAILED',
      message: 'Telegram login failed: PHONE_CODE_INVALID; nothing was changed',
    });
    expect(asked.slice(0, 2)).toEqual(['id:777', 'hash:ffffeeee0000']);
    expect(await readFile(paths.env, 'utf8')).toBe(before);
  });

  it('refuses an unknown agent', async () => {
    await expect(telegramLogin({ home, id: 'agent-00000000-0000-4000-8000-000000000001', prompts: prompts([]), login: fakeLogin([]) })).rejects.toMatchObject({ code: 'ENOAGENT' });
  });
});
