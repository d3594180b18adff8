import { AnimusError } from '../../core/errors.js';

/**
 * The rules of the one interactive MTProto login, apart from the library. GramJS's
 * `client.start` loops on its own: after any error it calls `onError`, and asks again
 * (phone, code or password) unless `onError` resolves true, when it throws
 * AUTH_USER_CANCEL. Left to that loop, a wrong phone number or API id calls sendCode
 * again at once, forever. Here a wrong code or password is asked again at most
 * `maxAttempts` times, every other error stops the login with one line, and a prompt
 * cancelled with Ctrl-C stops it too (GramJS swallows an error thrown by the code
 * prompt and reports "Code is empty" instead, so the cancel is remembered here).
 */
export interface LoginPrompts {
  phone(): Promise<string>;
  code(): Promise<string>;
  password(): Promise<string>;
  /** Tells the person why they are asked again ("wrong code, 2 tries left"). */
  notice?(text: string): void;
}

export interface MtprotoLogin {
  /** Runs the interactive login once; returns the session string to keep. */
  login(apiId: number, apiHash: string, prompts: LoginPrompts): Promise<string>;
}

/** What `client.start` takes (GramJS's UserAuthParams, the members used). */
export interface StartCallbacks {
  phoneNumber(): Promise<string>;
  phoneCode(isCodeViaApp?: boolean): Promise<string>;
  password(hint?: string): Promise<string>;
  onError(error: Error): Promise<boolean>;
}

/** The client a login needs: GramJS's TelegramClient has these members. */
export interface LoginClient {
  start(callbacks: StartCallbacks): Promise<void>;
  session: { save(): string };
  destroy?(): Promise<unknown>;
  disconnect(): Promise<unknown>;
}

const RETRY: Record<string, 'code' | 'password'> = {
  PHONE_CODE_INVALID: 'code',
  PHONE_CODE_EMPTY: 'code',
  'Code is empty': 'code',
  PASSWORD_HASH_INVALID: 'password',
  'Password is empty': 'password',
};

const FATAL: Record<string, string> = {
  PHONE_NUMBER_INVALID: 'Telegram says the phone number is not valid (PHONE_NUMBER_INVALID): give it in international format, e.g. +15551234567 (TELEGRAM_PHONE in the .env, if set there)',
  PHONE_NUMBER_UNOCCUPIED: 'no Telegram account uses this phone number (PHONE_NUMBER_UNOCCUPIED): sign up in a Telegram app first',
  PHONE_NUMBER_BANNED: 'Telegram has banned this phone number (PHONE_NUMBER_BANNED)',
  PHONE_NUMBER_FLOOD: 'Telegram refuses more login codes for this number for now (PHONE_NUMBER_FLOOD): try again later',
  PHONE_CODE_EXPIRED: 'the login code expired (PHONE_CODE_EXPIRED): run the command again for a new one',
  API_ID_INVALID: 'Telegram refused the API id and hash (API_ID_INVALID): copy both from https://my.telegram.org into TELEGRAM_API_ID and TELEGRAM_API_HASH',
  API_ID_PUBLISHED_FLOOD: 'Telegram refuses this API id, it was published (API_ID_PUBLISHED_FLOOD): create your own at https://my.telegram.org',
  AUTH_RESTART: 'Telegram restarted the login (AUTH_RESTART): run the command again',
  'Account has 2FA enabled.': 'the account has two-step verification and no password was given',
};

function errorName(error: Error): string {
  const rpc = (error as { errorMessage?: unknown }).errorMessage;
  return typeof rpc === 'string' ? rpc : error.message;
}

export function loginCallbacks(prompts: LoginPrompts, maxAttempts = 3): { callbacks: StartCallbacks; failure(): Error | undefined } {
  let failure: Error | undefined;
  const attempts = { code: 0, password: 0 };
  /** A prompt that throws (Ctrl-C) ends the login with that error. */
  const ask = async (prompt: () => Promise<string>): Promise<string> => {
    try {
      return await prompt();
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
      throw failure;
    }
  };
  const stop = (error: Error) => {
    failure ??= error;
    return true;
  };
  const callbacks: StartCallbacks = {
    phoneNumber: () => ask(prompts.phone),
    phoneCode: () => ask(prompts.code),
    password: () => ask(prompts.password),
    async onError(error) {
      if (failure) return true;
      const name = errorName(error);
      const retry = RETRY[name];
      if (retry) {
        attempts[retry] += 1;
        if (attempts[retry] >= maxAttempts) return stop(new AnimusError('EFAILED', `wrong ${retry === 'code' ? 'login code' : 'password'} ${maxAttempts} times: nothing was changed; run the command again`));
        const left = maxAttempts - attempts[retry];
        prompts.notice?.(`${retry === 'code' ? 'that code was not accepted' : 'wrong password'} (${name}): ${left} ${left === 1 ? 'try' : 'tries'} left`);
        return false;
      }
      const seconds = (error as { seconds?: unknown }).seconds;
      if (typeof seconds === 'number' || name === 'FLOOD') return stop(new AnimusError('EFAILED', `Telegram asks to wait ${typeof seconds === 'number' ? `${seconds} s` : 'a while'} before the next login attempt (FLOOD_WAIT): nothing was changed`));
      return stop(new AnimusError('EFAILED', `${FATAL[name] ?? `Telegram login failed: ${name}`}; nothing was changed`, { cause: error }));
    },
  };
  return { callbacks, failure: () => failure };
}

/**
 * A login on any client with GramJS's `start`: once `start` resolves the account is
 * authorised, and its session is returned whatever failed on the way there.
 */
export function createLogin(open: (apiId: number, apiHash: string) => Promise<LoginClient>): MtprotoLogin {
  return {
    async login(apiId, apiHash, prompts) {
      const client = await open(apiId, apiHash);
      const { callbacks, failure } = loginCallbacks(prompts);
      try {
        try {
          await client.start(callbacks);
        } catch (error) {
          throw failure() ?? error;
        }
        return client.session.save();
      } finally {
        await (client.destroy?.() ?? client.disconnect()).catch(() => {});
      }
    },
  };
}
