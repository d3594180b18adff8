import type { Command } from 'commander';
import { AnimusError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

export function registerRuntimeCommands(program: Command, action: Action): void {
  examples(
    program
      .command('send <id> <text...>')
      .description("put a message into an agent's queue from the command line (platform `local`); with --wait, print the reply")
      .option('--wait', 'wait for the reply and print it')
      .option('--timeout <seconds>', 'with --wait: give up after this long (the message stays queued)', '120')
      .action(
        action(async (ctx, id: string, words: string[], raw: { wait?: boolean; timeout?: string }) => {
          // Unquoted words are one message, as a person typing them means.
          const text = words.join(' ');
          const { sendLocalMessage, normalizeTimeout } = await import('../../runtime/send.js');
          const timeoutS = normalizeTimeout(raw.timeout, 120);
          const wait = raw.wait === true;
          const progress = wait ? ctx.out.progress(`sending to ${id}`) : undefined;
          let result;
          try {
            result = await sendLocalMessage({
              home: await ctx.home(),
              id,
              text,
              wait,
              timeoutS,
              signal: ctx.signal,
              onQueued: ({ item, runtimeRunning }) => progress?.update(`waiting for the reply to item ${item}${runtimeRunning ? '' : ' (the runtime is not running)'}`),
            });
          } catch (error) {
            progress?.fail();
            throw error;
          }
          progress?.done();
          if (!result.runtimeRunning && !wait) ctx.out.warn(`the runtime of ${result.agent} is not running: the message is answered once it starts`);
          if (result.mode === 'listen') ctx.out.warn(`${result.agent} is in listen mode: the message is stored but not answered`);
          ctx.out.result(result, () => {
            if (result.status === 'completed') return result.reply ?? '';
            ctx.out.success(`queued as item ${result.item} for ${result.agent}`);
            return undefined;
          });
        }),
      ),
    [`animus send ${EXAMPLE_ID} "hello"`, `animus send ${EXAMPLE_ID} "what do you remember about me?" --wait`, `animus send ${EXAMPLE_ID} "ping" --wait --timeout 30 --json`],
  );

  const telegram = program.command('telegram').description('Telegram accounts of agents');
  examples(
    telegram
      .command('login <id>')
      .description("log an agent's Telegram user account in once (phone, code, 2FA password); stores TELEGRAM_SESSION_STRING in its .env")
      .action(
        action(async (ctx, id: string) => {
          if (!ctx.interactive) {
            throw new AnimusError('ENOTTY', 'telegram login asks for the code Telegram sends you: run it in an interactive terminal (without --yes)');
          }
          const { telegramLogin } = await import('../../runtime/telegram-login.js');
          const { gramJsLogin } = await import('../../runtime/plugins/mtproto-adapter.js');
          const result = await telegramLogin({ home: await ctx.home(), id, prompts: loginPrompts(ctx), login: gramJsLogin });
          ctx.out.result(result, () => {
            ctx.out.success(`logged in: ${result.stored.join(', ')} stored in ${result.envFile}`);
            return `restart the agent to use it: animus restart ${result.agent}`;
          });
        }),
      ),
    [`animus telegram login ${EXAMPLE_ID}`],
  );
  const webhook = examples(telegram.command('webhook').description("the webhook on an agent's bot token (it keeps the runtime from polling)"), [`animus telegram webhook delete ${EXAMPLE_ID}`]);
  examples(
    webhook
      .command('delete <id>')
      .description("remove a webhook from the agent's bot token, so its runtime receives the messages (the waiting ones too)")
      .action(
        action(async (ctx, id: string) => {
          const { deleteTelegramWebhook } = await import('../../runtime/telegram-webhook.js');
          const result = await deleteTelegramWebhook({ home: await ctx.home(), id, env: ctx.env, signal: ctx.signal });
          ctx.out.result(result, () => {
            if (!result.wasSet) return `no webhook is set on the bot token of ${result.agent}: nothing to do`;
            ctx.out.success(`webhook to ${result.origin} deleted; ${result.pendingUpdates} waiting update(s) kept`);
            return `the running agent resumes polling within a minute (or now: animus restart ${result.agent})`;
          });
        }),
      ),
    [`animus telegram webhook delete ${EXAMPLE_ID}`, `animus telegram webhook delete ${EXAMPLE_ID} --json`],
  );
}

function loginPrompts(ctx: CliContext) {
  return {
    apiId: async () => {
      const { askText } = await import('./prompts.js');
      return askText(ctx, 'Telegram API id (from https://my.telegram.org)', 'TELEGRAM_API_ID in the .env', { validate: (v) => (/^\d+$/.test(v.trim()) ? true : 'a number') });
    },
    apiHash: async () => {
      const { askText } = await import('./prompts.js');
      return askText(ctx, 'Telegram API hash', 'TELEGRAM_API_HASH in the .env', { secret: true });
    },
    phone: async () => {
      const { askText } = await import('./prompts.js');
      return askText(ctx, 'Phone number (international format, e.g. +15551234567)', 'TELEGRAM_PHONE in the .env');
    },
    code: async () => {
      const { askText } = await import('./prompts.js');
      return askText(ctx, 'Login code Telegram sent you', 'an interactive terminal');
    },
    password: async () => {
      const { askText } = await import('./prompts.js');
      return askText(ctx, 'Two-step verification password', 'an interactive terminal', { secret: true });
    },
    notice: (text: string) => ctx.out.warn(text),
  };
}
