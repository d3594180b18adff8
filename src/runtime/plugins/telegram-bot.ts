import { PLATFORMS } from '../../store/inbound.js';
import { envMs } from '../backoff.js';
import { requireOwner } from '../config.js';
import { splitMessage } from '../format.js';
import { errorText } from '../logger.js';
import { BotApi, TelegramApiError, type TelegramUpdate } from './telegram-bot-api.js';
import { DeliveryError, type Plugin, type PluginContext, type PluginHealth } from './types.js';

/**
 * Telegram bot over the Bot API with long polling. Owner-only when required; the
 * update offset advances only after the messages are stored, and a redelivered
 * update is recognised by its message id, so nothing is lost or stored twice.
 */
export function createTelegramBotPlugin(ctx: PluginContext): Plugin {
  const env = ctx.env;
  const api = new BotApi(env.TELEGRAM_BOT_TOKEN ?? '', env.TELEGRAM_API_ROOT?.trim() || 'https://api.telegram.org');
  const pollTimeoutS = Math.round(envMs(env, 'TELEGRAM_POLL_TIMEOUT_S', 25));
  const ownerId = env.TELEGRAM_OWNER_ID?.trim() || undefined;
  const ownerName = env.TELEGRAM_OWNER_USERNAME?.trim().replace(/^@/, '').toLowerCase() || undefined;
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let health: PluginHealth = { ok: false, detail: 'not started' };
  let offset: number | undefined;

  const isOwner = (from: { id: number; username?: string } | undefined): boolean => {
    if (!from) return false;
    if (ownerId && String(from.id) === ownerId) return true;
    return Boolean(ownerName && from.username && from.username.toLowerCase() === ownerName);
  };

  const handle = (update: TelegramUpdate) => {
    const message = update.message;
    if (!message || typeof message.text !== 'string' || message.text === '') {
      ctx.logger.debug('telegram update without text ignored', { update: update.update_id });
      return;
    }
    const from = message.from;
    if (requireOwner(ctx.settings(), env) && !isOwner(from)) {
      ctx.logger.info('telegram message from a non-owner ignored (owner-only mode)', { telegram_user: from?.id });
      return;
    }
    const result = ctx.store({
      platform: PLATFORMS.telegramBot,
      platformUserId: String(from?.id ?? message.chat.id),
      username: from?.username ?? null,
      displayName: [from?.first_name, from?.last_name].filter(Boolean).join(' ') || null,
      chatId: String(message.chat.id),
      platformMessageId: String(message.message_id),
      text: message.text,
      timestamp: new Date(message.date * 1000).toISOString(),
    });
    if (result.status === 'queued') ctx.logger.info('telegram message queued', { item: result.queueId, message: result.messageId });
    else ctx.logger.info(`telegram message ${result.status === 'duplicate' ? 'already stored' : 'ignored: user is inactive'}`, { telegram_message: message.message_id });
  };

  const poll = async (signal: AbortSignal) => {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const updates = await api.call<TelegramUpdate[]>('getUpdates', { offset, timeout: pollTimeoutS, allowed_updates: ['message'] }, signal, (pollTimeoutS + 15) * 1000);
        if (!health.ok) ctx.logger.info('telegram bot polling');
        health = { ok: true, detail: 'polling' };
        failures = 0;
        for (const update of updates) {
          try {
            handle(update);
          } catch (error) {
            // Not confirmed: Telegram sends it again on the next poll.
            ctx.logger.error('cannot store telegram message; will retry', { error: ctx.redact(errorText(error)) });
            throw error;
          }
          offset = update.update_id + 1;
        }
      } catch (error) {
        if (signal.aborted) return;
        failures += 1;
        const wait = pollWait(error, failures);
        health = { ok: false, detail: ctx.redact(errorText(error)) };
        const level = error instanceof TelegramApiError && (error.status === 401 || error.status === 404) ? 'error' : 'warn';
        ctx.logger[level]('telegram getUpdates failed', { error: health.detail, retry_in_ms: wait });
        await sleep(wait, signal);
      }
    }
  };

  return {
    name: 'telegram_bot',
    platform: PLATFORMS.telegramBot,
    async start() {
      controller = new AbortController();
      health = { ok: false, detail: 'starting' };
      loop = poll(controller.signal);
    },
    async stop() {
      controller?.abort();
      await loop;
      loop = undefined;
      // Confirm what was stored, so the next start does not fetch it again (the store would drop it, but why ask).
      if (offset !== undefined) await api.call('getUpdates', { offset, timeout: 0, limit: 1 }, new AbortController().signal, 1000).catch(() => {});
      health = { ok: false, detail: 'stopped' };
    },
    async deliver(target, text, signal) {
      const parseMode = ctx.settings().plugins.telegram_bot.parse_mode;
      const chunks = splitMessage(text);
      for (let i = target.partsSent; i < chunks.length; i++) {
        const params: Record<string, unknown> = { chat_id: target.chatId, text: chunks[i] };
        if (i === 0 && target.replyTo && /^\d+$/.test(target.replyTo)) {
          params.reply_parameters = { message_id: Number(target.replyTo), allow_sending_without_reply: true };
        }
        try {
          await sendWithFallback(api, params, parseMode, signal);
        } catch (error) {
          throw toDeliveryError(error);
        }
        // Recorded only for a split reply: a single part is settled by the delivery's own record.
        if (chunks.length > 1) target.partSent(i + 1);
      }
    },
    health: () => health,
  };
}

/** Sends with the configured parse_mode; a reply the parser rejects goes again as plain text. */
async function sendWithFallback(api: BotApi, params: Record<string, unknown>, parseMode: string, signal: AbortSignal): Promise<void> {
  if (parseMode === 'none') {
    await api.call('sendMessage', params, signal);
    return;
  }
  try {
    await api.call('sendMessage', { ...params, parse_mode: parseMode }, signal);
  } catch (error) {
    if (error instanceof TelegramApiError && error.status === 400 && /parse|entit/i.test(error.description)) {
      await api.call('sendMessage', params, signal);
      return;
    }
    throw error;
  }
}

function toDeliveryError(error: unknown): DeliveryError {
  if (error instanceof TelegramApiError) {
    if (error.status === 429) return new DeliveryError(error.message, true, (error.retryAfterS ?? 1) * 1000);
    // Chat not found, bot blocked by the user, message too long: sending again cannot help.
    if (error.status === 400 || error.status === 403) return new DeliveryError(error.message, false);
    return new DeliveryError(error.message, true);
  }
  return new DeliveryError(errorText(error), true);
}

function pollWait(error: unknown, failures: number): number {
  if (error instanceof TelegramApiError) {
    if (error.status === 429 && error.retryAfterS !== undefined) return error.retryAfterS * 1000;
    if (error.status === 401 || error.status === 404) return 60_000;
  }
  return Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
