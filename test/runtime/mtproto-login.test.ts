import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { GramJsLikeClient, type ScriptedAccount } from '../helpers/gramjs-login.js';
import { tempDir } from '../helpers/temp.js';
import { AnimusError } from '../../src/core/errors.js';
import { parseEnv } from '../../src/config/env-file.js';
import { createLogin, type LoginPrompts } from '../../src/runtime/plugins/mtproto-login.js';
import { telegramLogin } from '../../src/runtime/telegram-login.js';

const ACCOUNT: ScriptedAccount = { phone: '+15550001111', code: '40213' };

/** Prompts that answer from lists (one answer per time asked) and record what was asked and said. */
function prompts(answers: { phone?: string[]; code?: Array<string | Error>; password?: string[] }) {
  const asked: string[] = [];
  const notices: string[] = [];
  const next = async (kind: 'phone' | 'code' | 'password') => {
    asked.push(kind);
    const answer = answers[kind]?.shift();
    if (answer instanceof Error) throw answer;
    if (answer === undefined) throw new Error(`asked for a ${kind} more often than scripted`);
    return answer;
  };
  const p: LoginPrompts = { phone: () => next('phone'), code: () => next('code'), password: () => next('password'), notice: (t) => void notices.push(t) };
  return { p, asked, notices };
}

async function login(account: ScriptedAccount, answers: Parameters<typeof prompts>[0]) {
  const client = new GramJsLikeClient(account);
  const { p, asked, notices } = prompts(answers);
  const outcome = await createLogin(async () => client).login(12345, 'hash-f00dfeed', p).then(
    (session) => ({ session, error: undefined }),
    (error: unknown) => ({ session: undefined, error: error as Error }),
  );
  return { client, asked, notices, ...outcome };
}

describe('MTProto login (against a client that runs start() as GramJS does)', () => {
  it('asks again after a mistyped code and keeps the authorised session', async () => {
    const run = await login(ACCOUNT, { phone: ['+15550001111'], code: ['40231', '40213'] });
    expect(run).toMatchObject({ session: 'session-1BVtsOHgBu-authorised' });
    expect(run.asked).toEqual(['phone', 'code', 'code']);
    expect(run.notices).toEqual(['that code was not accepted (PHONE_CODE_INVALID): 2 tries left']);
    expect(run.client.destroyed).toBe(true);
  });

  it('asks again after a wrong 2FA password', async () => {
    const run = await login({ ...ACCOUNT, password: 'correct horse' }, { phone: ['+15550001111'], code: ['40213'], password: ['wrong', 'correct horse'] });
    expect(run).toMatchObject({ session: 'session-1BVtsOHgBu-authorised' });
    expect(run.client.passwordChecks).toBe(2);
    expect(run.notices).toEqual(['wrong password (PASSWORD_HASH_INVALID): 2 tries left']);
  });

  it('stops after three wrong codes, with one line', async () => {
    const run = await login(ACCOUNT, { phone: ['+15550001111'], code: ['1', '2', '3', '4'] });
    expect(run.error).toMatchObject({ code: 'EFAILED', message: 'wrong login code 3 times: nothing was changed; run the command again' });
    expect(run.client.signInCalls).toBe(3);
  });

  const fatal: Array<[string, ScriptedAccount, string, RegExp]> = [
    ['a phone number Telegram calls invalid', ACCOUNT, '555-bad', /^Telegram says the phone number is not valid \(PHONE_NUMBER_INVALID\)/],
    ['an API id Telegram refuses', { ...ACCOUNT, badApiId: true }, '+15550001111', /^Telegram refused the API id and hash \(API_ID_INVALID\): copy both from https:\/\/my.telegram.org/],
    ['a flood wait', { ...ACCOUNT, floodWaitS: 300 }, '+15550001111', /^Telegram asks to wait 300 s before the next login attempt \(FLOOD_WAIT\)/],
  ];
  for (const [name, account, phone, message] of fatal) {
    it(`stops at once, one sendCode and one line, on ${name}`, async () => {
      const run = await login(account, { phone: [phone, phone, phone] });
      expect(run.error).toBeInstanceOf(AnimusError);
      expect(run.error!.message).toMatch(message);
      expect(run.error!.message).not.toContain('\n');
      expect(run.client.sendCodeCalls).toBe(1);
      expect(run.asked).toEqual(['phone']);
    });
  }

  it('cancels on Ctrl-C at the code prompt (which GramJS would otherwise swallow and ask again)', async () => {
    const interrupted = new AnimusError('EINTERRUPTED', 'cancelled: nothing was changed');
    const run = await login(ACCOUNT, { phone: ['+15550001111'], code: [interrupted] });
    expect(run.error).toBe(interrupted);
    expect(run.error).toMatchObject({ exitCode: 130 });
    expect(run.asked).toEqual(['phone', 'code']);
    expect(run.client.destroyed).toBe(true);
  });
});

describe('animus telegram login with these rules', () => {
  let home: string;
  beforeAll(async () => {
    home = await tempDir('animus-mtlogin');
  });

  it('stores the session after a mistyped code, and leaves the .env untouched on Ctrl-C', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo', env: { TELEGRAM_API_ID: '12345', TELEGRAM_API_HASH: 'f00dfeedcafe', TELEGRAM_PHONE: '+15550001111' } });
    const before = await readFile(paths.env, 'utf8');
    const extra = { apiId: async () => '1', apiHash: async () => 'x' };

    const cancelled = prompts({ code: [new AnimusError('EINTERRUPTED', 'cancelled: nothing was changed')] });
    await expect(telegramLogin({ home, id, prompts: { ...cancelled.p, ...extra }, login: createLogin(async () => new GramJsLikeClient(ACCOUNT)) })).rejects.toMatchObject({ code: 'EINTERRUPTED' });
    expect(await readFile(paths.env, 'utf8')).toBe(before);

    const typo = prompts({ code: ['00000', '40213'] });
    const result = await telegramLogin({ home, id, prompts: { ...typo.p, ...extra }, login: createLogin(async () => new GramJsLikeClient(ACCOUNT)) });
    expect(result.stored).toEqual(['TELEGRAM_SESSION_STRING']);
    expect(parseEnv(await readFile(paths.env, 'utf8'), paths.env).TELEGRAM_SESSION_STRING).toBe('session-1BVtsOHgBu-authorised');
    // The phone came from the .env: asked neither time.
    expect([...cancelled.asked, ...typo.asked]).toEqual(['code', 'code', 'code']);
  });
});
