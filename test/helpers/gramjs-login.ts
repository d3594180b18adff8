import { createRequire } from 'node:module';
import type { LoginClient, StartCallbacks } from '../../src/runtime/plugins/mtproto-login.js';

/**
 * A client whose `start` runs a user login the way GramJS 2.26 does (read from its
 * client/auth.js: signInUser, signInWithPassword), against a scripted account, and
 * fails with GramJS's own error classes (`telegram/errors`). What it keeps from
 * GramJS's loop: after an error it calls `onError` and asks again unless that
 * resolves true, when it throws AUTH_USER_CANCEL; a phone callback is asked again
 * (and sendCode called again) after a sendCode error; an error thrown by the code
 * callback is swallowed and reported as "Code is empty"; SESSION_PASSWORD_NEEDED
 * moves on to the password. It stops by itself after `maxRounds` so that a test of
 * a loop that never ends fails instead of hanging.
 */
const require = createRequire(import.meta.url);
const { RPCError, FloodWaitError } = require('telegram/errors') as {
  RPCError: new (message: string, request: unknown, code: number) => Error;
  FloodWaitError: new (args: { request: unknown; capture: number }) => Error;
};

export interface ScriptedAccount {
  phone: string;
  code: string;
  password?: string;
  /** sendCode answers API_ID_INVALID. */
  badApiId?: boolean;
  /** sendCode answers FLOOD_WAIT_<n>. */
  floodWaitS?: number;
}

export class GramJsLikeClient implements LoginClient {
  sendCodeCalls = 0;
  signInCalls = 0;
  passwordChecks = 0;
  authorised = false;
  destroyed = false;
  readonly session = { save: () => (this.authorised ? 'session-1BVtsOHgBu-authorised' : '') };

  constructor(private readonly account: ScriptedAccount, private readonly maxRounds = 50) {}

  async start(cb: StartCallbacks): Promise<void> {
    let rounds = 0;
    const guard = () => {
      if (++rounds > this.maxRounds) throw new Error(`login loop ran ${this.maxRounds} rounds`);
    };
    for (;;) {
      guard();
      try {
        const phone = await cb.phoneNumber();
        this.sendCodeCalls++;
        if (this.account.badApiId) throw new RPCError('API_ID_INVALID', undefined, 400);
        if (this.account.floodWaitS !== undefined) throw new FloodWaitError({ request: undefined, capture: this.account.floodWaitS });
        if (phone !== this.account.phone) throw new RPCError('PHONE_NUMBER_INVALID', undefined, 400);
        break;
      } catch (error) {
        if (await cb.onError(error as Error)) throw new Error('AUTH_USER_CANCEL');
      }
    }
    for (;;) {
      guard();
      try {
        let code: string | undefined;
        try {
          code = await cb.phoneCode(true);
        } catch {
          // GramJS keeps only RESTART_AUTH from here; anything else leaves the code empty.
        }
        if (!code) throw new Error('Code is empty');
        this.signInCalls++;
        if (code !== this.account.code) throw new RPCError('PHONE_CODE_INVALID', undefined, 400);
        if (this.account.password !== undefined) throw new RPCError('SESSION_PASSWORD_NEEDED', undefined, 401);
        this.authorised = true;
        return;
      } catch (error) {
        if ((error as { errorMessage?: string }).errorMessage === 'SESSION_PASSWORD_NEEDED') return this.password(cb, guard);
        if (await cb.onError(error as Error)) throw new Error('AUTH_USER_CANCEL');
      }
    }
  }

  private async password(cb: StartCallbacks, guard: () => void): Promise<void> {
    for (;;) {
      guard();
      try {
        const password = await cb.password('hint');
        if (!password) throw new Error('Password is empty');
        this.passwordChecks++;
        if (password !== this.account.password) throw new RPCError('PASSWORD_HASH_INVALID', undefined, 400);
        this.authorised = true;
        return;
      } catch (error) {
        if (await cb.onError(error as Error)) throw new Error('AUTH_USER_CANCEL');
      }
    }
  }

  async disconnect(): Promise<void> {}

  async destroy(): Promise<void> {
    this.destroyed = true;
  }
}
