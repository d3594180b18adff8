import { join } from 'node:path';
import { DEFAULT_MEDIA_REPLY } from '../../config/settings.js';
import { requireOwner } from '../../config/env-problems.js';
import { PLATFORMS } from '../../store/inbound.js';
import { moveChatDeliveries } from '../../store/work-queue.js';
import { envMs } from '../backoff.js';
import { splitMessage } from '../format.js';
import { errorText } from '../logger.js';
import { mediaPlaceholder } from './telegram-media.js';
import { BotApi, TelegramApiError, webhookOrigin, type TelegramUpdate, type WebhookInfo } from './telegram-bot-api.js';
import { SendPacer } from './send-pacer.js';
import { DeliveryError, type Plugin, type PluginContext, type PluginHealth } from './types.js';
import { isoTime } from '../../core/time.js';

/**
 * Telegram bot over the Bot API with long polling. Owner-only when required; the
 * update offset advances only after the messages are stored, and a redelivered
 * update is recognised by its message id, so nothing is lost or stored twice.
 *
 * What goes wrong with a bot in practice is recorded in the `telegram_bot` section
 * of runtime-state.json, which `animus health` reads: a webhook left on the token or
 * a second poller (409, backed off, with the fix), a revoked token (401: the plugin
 * stops, the rest of the runtime goes on), and when Telegram last answered a poll.
 */
export const BOT_SECTION = 'telegram_bot';

/** A healthy poll is recorded at most this often (the file is not rewritten at every poll). */
const RECORD_POLL_EVERY_MS = 60_000;

type Problem = 'webhook' | 'conflict' | 'unauthorized' | 'unreachable';

export function createTelegramBotPlugin(ctx: PluginContext): Plugin {
  const env = ctx.env;
  const api = new BotApi(env.TELEGRAM_BOT_TOKEN ?? '', env.TELEGRAM_API_ROOT?.trim() || 'https://api.telegram.org');
  const pollTimeoutS = Math.round(envMs(env, 'TELEGRAM_POLL_TIMEOUT_S', 25));
  // A server that answers at once (updates queued, an emulator, a proxy) is not polled in a tight loop.
  const pollFloorMs = envMs(env, 'TELEGRAM_POLL_FLOOR_MS', 1000);
  const conflictRetryMs = envMs(env, 'TELEGRAM_CONFLICT_RETRY_MS', 5000);
  const ownerId = env.TELEGRAM_OWNER_ID?.trim() || undefined;
  const ownerName = env.TELEGRAM_OWNER_USERNAME?.trim().replace(/^@/, '').toLowerCase() || undefined;
  const envPath = join(ctx.agentDir, '.env');
  const pacer = new SendPacer();
  /** Groups that became supergroups during this run (old id → new id), for replies already on their way. */
  const migrated = new Map<string, string>();
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let health: PluginHealth = { ok: false, detail: 'not started' };
  let offset: number | undefined;
  let bot: string | undefined;
  let lastRecordedPoll = 0;
  let problem: Problem | undefined;

  const record = (status: 'ok' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}) => {
    ctx.state.set(BOT_SECTION, { status, message, ...(bot ? { bot } : {}), ...fields });
  };

  const pollSucceeded = () => {
    const now = Date.now();
    if (!health.ok) ctx.logger.info('telegram bot polling', bot ? { bot } : {});
    if (problem) ctx.logger.info('telegram answers the poll again', { was: problem });
    health = { ok: true, detail: 'polling' };
    problem = undefined;
    if (now - lastRecordedPoll < RECORD_POLL_EVERY_MS && ctx.state.get(BOT_SECTION)?.status === 'ok') return;
    lastRecordedPoll = now;
    record('ok', 'polling', { last_poll_ok_at: isoTime(now) });
  };

  /** One line for a problem when it starts (and when it changes); its repeats are debug lines. */
  const report = (kind: Problem, level: 'warn' | 'error', message: string, fields: Record<string, unknown>) => {
    health = { ok: false, detail: message };
    const last = ctx.state.get(BOT_SECTION);
    record(level, message, { problem: kind, ...(typeof last?.last_poll_ok_at === 'string' ? { last_poll_ok_at: last.last_poll_ok_at } : {}) });
    if (problem !== kind) ctx.logger[level](message, fields);
    else ctx.logger.debug(message, fields);
    problem = kind;
  };

  const refused = () => {
    problem = undefined;
    report('unauthorized', 'error', `telegram bot stopped: Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized), it was revoked or mistyped: put the token from @BotFather in ${envPath} and restart the agent`, {});
  };

  const webhookMessage = (info?: WebhookInfo) =>
    `a webhook is set on this bot token${info?.url ? ` (${webhookOrigin(info.url)})` : ''}, so Telegram sends updates there and refuses getUpdates (409): remove it with \`animus telegram webhook delete ${ctx.agentId}\``;

  const isOwner = (from: { id: number; username?: string } | undefined): boolean => {
    if (!from) return false;
    if (ownerId && String(from.id) === ownerId) return true;
    return Boolean(ownerName && from.username && from.username.toLowerCase() === ownerName);
  };

  const migrate = (from: string, to: string) => {
    migrated.set(from, to);
    const moved = moveChatDeliveries(ctx.db, PLATFORMS.telegramBot, from, to);
    ctx.logger.info('telegram group became a supergroup: its messages and replies use the new chat id', { from_chat: from, to_chat: to, moved });
  };

  const handle = (update: TelegramUpdate) => {
    const message = update.message;
    if (!message) {
      ctx.logger.debug('telegram update without a message ignored', { update: update.update_id });
      return;
    }
    if (message.migrate_to_chat_id !== undefined) return migrate(String(message.chat.id), String(message.migrate_to_chat_id));
    if (message.migrate_from_chat_id !== undefined) return migrate(String(message.migrate_from_chat_id), String(message.chat.id));
    const text = nonEmpty(message.text) ?? nonEmpty(message.caption);
    const placeholder = text === undefined ? mediaPlaceholder(message) : undefined;
    if (text === undefined && placeholder === undefined) {
      ctx.logger.debug('telegram service message ignored', { update: update.update_id });
      return;
    }
    const from = message.from;
    if (requireOwner(ctx.settings(), env) && !isOwner(from)) {
      ctx.logger.info('telegram message from a non-owner ignored (owner-only mode)', { telegram_user: from?.id });
      return;
    }
    const bot = ctx.settings().plugins.telegram_bot;
    const autoReply = placeholder !== undefined && bot.media === 'reply' ? bot.media_reply.trim() || DEFAULT_MEDIA_REPLY : undefined;
    const result = ctx.store({
      platform: PLATFORMS.telegramBot,
      platformUserId: String(from?.id ?? message.chat.id),
      username: from?.username ?? null,
      displayName: [from?.first_name, from?.last_name].filter(Boolean).join(' ') || null,
      chatId: String(message.chat.id),
      platformMessageId: String(message.message_id),
      text: text ?? placeholder!,
      timestamp: isoTime(message.date * 1000),
      ...(autoReply !== undefined ? { autoReply } : {}),
    });
    if (result.status === 'queued') ctx.logger.info(placeholder ? `telegram ${placeholder} queued for the agent` : 'telegram message queued', { item: result.queueId, message: result.messageId });
    else if (result.status === 'answered') ctx.logger.info(`telegram ${placeholder} stored and answered with the media reply (plugins.telegram_bot.media = reply)`, { message: result.messageId });
    else ctx.logger.info(`telegram message ${result.status === 'duplicate' ? 'already stored' : 'ignored: user is inactive'}`, { telegram_message: message.message_id });
  };

  /** getMe and getWebhookInfo: false when the token is refused (the plugin stops). */
  const preflight = async (signal: AbortSignal): Promise<boolean> => {
    try {
      const me = await api.call<{ username?: string }>('getMe', {}, signal, 15_000);
      bot = me.username ? `@${me.username}` : undefined;
    } catch (error) {
      if (signal.aborted) return false;
      if (error instanceof TelegramApiError && error.status === 401) {
        refused();
        return false;
      }
      ctx.logger.warn('telegram getMe failed; polling anyway', { error: ctx.redact(errorText(error)) });
    }
    try {
      const info = await api.call<WebhookInfo>('getWebhookInfo', {}, signal, 15_000);
      if (info.url) report('webhook', 'error', webhookMessage(info), { pending_updates: info.pending_update_count });
    } catch (error) {
      if (signal.aborted) return false;
      if (error instanceof TelegramApiError && error.status === 401) {
        refused();
        return false;
      }
      // Not every Bot API server has it (emulators): a webhook still shows as a 409 below.
      ctx.logger.debug('telegram getWebhookInfo failed', { error: ctx.redact(errorText(error)) });
    }
    return true;
  };

  const poll = async (signal: AbortSignal) => {
    if (!(await preflight(signal))) return;
    let failures = 0;
    let startedAt = 0;
    while (!signal.aborted) {
      await sleep(startedAt + pollFloorMs - Date.now(), signal);
      if (signal.aborted) return;
      startedAt = Date.now();
      try {
        const updates = await api.call<TelegramUpdate[]>('getUpdates', { offset, timeout: pollTimeoutS, allowed_updates: ['message'] }, signal, (pollTimeoutS + 15) * 1000);
        pollSucceeded();
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
        if (error instanceof TelegramApiError && error.status === 401) return refused();
        failures += 1;
        const wait = pollWait(error, failures, conflictRetryMs);
        const detail = ctx.redact(errorText(error));
        if (error instanceof TelegramApiError && error.status === 409) {
          if (/webhook/i.test(error.description)) report('webhook', 'error', webhookMessage(), { retry_in_ms: wait });
          else report('conflict', 'error', 'another program polls this bot token (409 terminated by other getUpdates request), so updates are split between them: stop it, or give this agent a bot token of its own', { retry_in_ms: wait });
        } else {
          report('unreachable', 'warn', `telegram getUpdates failed: ${detail}`, { retry_in_ms: wait });
        }
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
      ctx.state.clear(BOT_SECTION);
    },
    async deliver(target, text, signal) {
      const parseMode = ctx.settings().plugins.telegram_bot.parse_mode;
      const chunks = splitMessage(text);
      for (let i = target.partsSent; i < chunks.length; ) {
        const chatId = migrated.get(target.chatId) ?? target.chatId;
        const wait = pacer.reserve(chatId);
        if (wait > 0) throw DeliveryError.later(`chat ${chatId} send pacing`, wait);
        const params: Record<string, unknown> = { chat_id: chatId, text: chunks[i] };
        if (i === 0 && target.replyTo && /^\d+$/.test(target.replyTo)) {
          params.reply_parameters = { message_id: Number(target.replyTo), allow_sending_without_reply: true };
        }
        try {
          await sendWithFallback(api, params, parseMode, signal);
        } catch (error) {
          if (error instanceof TelegramApiError && error.migrateToChatId !== undefined && !migrated.has(chatId)) {
            migrate(chatId, String(error.migrateToChatId));
            continue;
          }
          if (error instanceof TelegramApiError && error.status === 429) {
            // This chat waits what Telegram asked; the others go on.
            const ms = (error.retryAfterS ?? 1) * 1000;
            pacer.block(chatId, ms);
            ctx.logger.info('telegram asked to wait before sending to this chat again (429); other chats go on', { chat: chatId, retry_after_s: error.retryAfterS ?? 1, message: target.messageId });
            throw DeliveryError.later(`Telegram asked to wait ${error.retryAfterS ?? 1} s before sending to chat ${chatId} (429)`, ms);
          }
          throw toDeliveryError(error);
        }
        // Recorded only for a split reply: a single part is settled by the delivery's own record.
        if (chunks.length > 1) target.partSent(i + 1);
        i += 1;
      }
    },
    health: () => health,
  };
}

function nonEmpty(text: string | undefined): string | undefined {
  return typeof text === 'string' && text.trim() !== '' ? text : undefined;
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
    // Chat not found, bot blocked by the user, message too long: sending again cannot help.
    if (error.status === 400 || error.status === 403) return new DeliveryError(error.message, false);
    return new DeliveryError(error.message, true);
  }
  return new DeliveryError(errorText(error), true);
}

/** 429 waits what Telegram says; 409 (webhook, other poller) backs off from `conflictMs` to 12x it; the rest doubles up to 30 s. */
function pollWait(error: unknown, failures: number, conflictMs: number): number {
  if (error instanceof TelegramApiError) {
    if (error.status === 429 && error.retryAfterS !== undefined) return error.retryAfterS * 1000;
    if (error.status === 409) return Math.min(conflictMs * 12, conflictMs * 2 ** Math.min(failures - 1, 4));
    if (error.status === 404) return 60_000;
  }
  return Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
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
