import { AnimusError, describeError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { isPlaceholder, parseEnv, setEnvValue } from '../config/env-file.js';
import { readEnvText } from '../instances/agent-files.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { requireAgent } from '../instances/registry.js';
import type { LoginPrompts, MtprotoLogin } from './plugins/mtproto-adapter.js';

/**
 * `animus telegram login <id>`: the one interactive MTProto login (phone, code, 2FA
 * password) for an agent's Telegram user account. The session string goes straight
 * into that agent's .env (0600, atomic rewrite that keeps every other line) and is
 * never returned or printed.
 */
export interface TelegramLoginOptions {
  home: string;
  id: string;
  prompts: LoginPrompts & {
    /** Asked only when the .env has no usable TELEGRAM_API_ID / TELEGRAM_API_HASH. */
    apiId(): Promise<string>;
    apiHash(): Promise<string>;
  };
  login: MtprotoLogin;
}

export interface TelegramLoginResult {
  agent: string;
  envFile: string;
  stored: string[];
}

export async function telegramLogin(options: TelegramLoginOptions): Promise<TelegramLoginResult> {
  const paths = await requireAgent(options.home, options.id);
  const env = parseEnv(await readEnvText(paths), paths.env);
  const stored: string[] = [];
  const usable = (value: string | undefined) => (value && value.trim() !== '' && !isPlaceholder(value) ? value.trim() : undefined);

  let apiIdText = usable(env.TELEGRAM_API_ID);
  if (!apiIdText) {
    apiIdText = (await options.prompts.apiId()).trim();
    stored.push('TELEGRAM_API_ID');
  }
  if (!/^\d+$/.test(apiIdText)) throw new AnimusError('EUSAGE', `TELEGRAM_API_ID "${apiIdText}" is not a number: copy it from https://my.telegram.org`);
  let apiHash = usable(env.TELEGRAM_API_HASH);
  if (!apiHash) {
    apiHash = (await options.prompts.apiHash()).trim();
    stored.push('TELEGRAM_API_HASH');
  }
  const phone = usable(env.TELEGRAM_PHONE);
  const prompts: LoginPrompts = { phone: phone ? async () => phone : options.prompts.phone, code: options.prompts.code, password: options.prompts.password };

  let session: string;
  try {
    session = await options.login.login(Number(apiIdText), apiHash, prompts);
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EFAILED', `Telegram login failed: ${describeError(error)}; nothing was changed`, { cause: error });
  }
  if (!session) throw new AnimusError('EFAILED', 'Telegram login returned no session: nothing was changed; try again');

  // Under the agent's lock (not held while the person types), re-read right before
  // writing: an edit made while the code was typed is kept.
  await withAgentLock(paths, { command: 'telegram login' }, async () => {
    let text = await readEnvText(paths);
    if (stored.includes('TELEGRAM_API_ID')) text = setEnvValue(text, 'TELEGRAM_API_ID', apiIdText);
    if (stored.includes('TELEGRAM_API_HASH')) text = setEnvValue(text, 'TELEGRAM_API_HASH', apiHash);
    text = setEnvValue(text, 'TELEGRAM_SESSION_STRING', session);
    await writeFileAtomic(paths.env, text, 0o600);
  });
  stored.push('TELEGRAM_SESSION_STRING');
  return { agent: paths.agent.id, envFile: paths.env, stored };
}
