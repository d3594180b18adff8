import { PLATFORMS } from '../../store/inbound.js';
import { splitMessage } from '../format.js';
import { errorText } from '../logger.js';
import type { MtprotoAdapter, MtprotoAdapterFactory, UserMessage } from './mtproto-adapter.js';
import { DeliveryError, type Plugin, type PluginContext, type PluginHealth } from './types.js';
import { isoTime } from '../../core/time.js';

/**
 * A Telegram user account over MTProto (through MtprotoAdapter). MTProto does not
 * replay what arrived while the runtime was down, so at start it reads recent
 * private history newer than the last message it stored and queues what it missed;
 * the message-id check in the store keeps anything already stored from coming twice.
 *
 * An account receives more than conversations: Telegram's service account 777000
 * sends the login codes (which must never reach the agent or its LLM provider),
 * bots write to it, groups it is in talk all day. Only people in private chats are
 * answered, and groups when `plugins.telegram_user.allow_groups` is on.
 */
export const USER_SECTION = 'telegram_user';

/** Telegram's own service account: login codes and security notices. */
const TELEGRAM_SERVICE_ID = '777000';

/** Dialogs read at start to fill the entity cache (replies by user id need it). */
const DIALOGS_AT_START = 200;
export function createTelegramUserPlugin(ctx: PluginContext, factory: MtprotoAdapterFactory): Plugin {
  let adapter: MtprotoAdapter | undefined;
  let health: PluginHealth = { ok: false, detail: 'not started' };

  /** Why a message is not for the agent; undefined when it is. */
  const skipReason = (message: UserMessage): string | undefined => {
    if (message.senderId === TELEGRAM_SERVICE_ID) return 'from Telegram (777000): login codes and notices never reach the agent';
    if (message.senderIsBot) return 'from a bot';
    if (message.chatType === 'channel') return 'a channel post';
    if (message.chatType === 'group' && !ctx.settings().plugins.telegram_user.allow_groups) return 'in a group (plugins.telegram_user.allow_groups is off)';
    return undefined;
  };

  const store = (message: UserMessage, source: 'live' | 'catch-up') => {
    const skip = skipReason(message);
    if (skip) {
      // The text is not logged: it may be a login code.
      ctx.logger.info(`telegram user message ignored: ${skip}`, { chat: message.chatId });
      return;
    }
    try {
      const result = ctx.store({
        platform: PLATFORMS.telegramUser,
        platformUserId: message.senderId,
        username: message.username,
        displayName: message.displayName,
        chatId: message.chatId,
        platformMessageId: message.id,
        text: message.text,
        timestamp: isoTime(message.date * 1000),
      });
      if (result.status === 'queued') ctx.logger.info(`telegram user message queued (${source})`, { item: result.queueId, message: result.messageId });
    } catch (error) {
      ctx.logger.error('cannot store telegram user message', { error: ctx.redact(errorText(error)) });
    }
  };

  const lastStoredAt = (): number | undefined => {
    const row = ctx.db
      .prepare('SELECT MAX(m.timestamp) AS at FROM messages m JOIN platform_profiles p ON p.id = m.platform_profile_id WHERE p.platform = ?')
      .get(PLATFORMS.telegramUser) as { at: string | null };
    const parsed = row.at ? Date.parse(row.at) : Number.NaN;
    return Number.isNaN(parsed) ? undefined : Math.floor(parsed / 1000);
  };

  return {
    name: 'telegram_user',
    platform: PLATFORMS.telegramUser,
    async start() {
      const env = ctx.env;
      adapter = factory({ apiId: Number(env.TELEGRAM_API_ID), apiHash: env.TELEGRAM_API_HASH ?? '', session: env.TELEGRAM_SESSION_STRING ?? '' });
      adapter.onMessage((message) => store(message, 'live'));
      try {
        await adapter.connect();
      } catch (error) {
        health = { ok: false, detail: ctx.redact(errorText(error)) };
        ctx.logger.error('telegram user account cannot connect', { error: health.detail });
        ctx.state.set(USER_SECTION, { status: 'error', message: `cannot connect: ${health.detail}` });
        return;
      }
      health = { ok: true, detail: 'connected' };
      ctx.logger.info('telegram user account connected');
      try {
        const dialogs = await adapter.loadDialogs(DIALOGS_AT_START);
        ctx.logger.info('telegram user dialogs loaded (replies by user id work)', { dialogs });
      } catch (error) {
        ctx.logger.warn('telegram user dialogs could not be loaded: replies to people not seen since the start may fail', { error: ctx.redact(errorText(error)) });
      }
      ctx.state.set(USER_SECTION, { status: 'ok', message: 'connected' });
      const since = lastStoredAt();
      const limit = ctx.settings().plugins.telegram_user.catch_up_limit;
      // With no message ever stored there is nothing "missed": old history would flood the agent.
      if (since === undefined || limit === 0) return;
      try {
        const missed = await adapter.recentMessages(limit, since);
        for (const message of missed) store(message, 'catch-up');
        ctx.logger.info('telegram user catch-up done', { seen: missed.length });
      } catch (error) {
        ctx.logger.warn('telegram user catch-up failed', { error: ctx.redact(errorText(error)) });
      }
    },
    async stop() {
      await adapter?.disconnect();
      adapter = undefined;
      health = { ok: false, detail: 'stopped' };
      ctx.state.clear(USER_SECTION);
    },
    async deliver(target, text) {
      if (!adapter || !health.ok) throw new DeliveryError('telegram user account is not connected', true);
      const chunks = splitMessage(text);
      try {
        for (let i = target.partsSent; i < chunks.length; i++) {
          await adapter.sendMessage(target.chatId, chunks[i]!);
          if (chunks.length > 1) target.partSent(i + 1);
        }
      } catch (error) {
        const seconds = /FLOOD_WAIT_(\d+)/.exec(errorText(error))?.[1];
        throw new DeliveryError(errorText(error), true, seconds ? Number(seconds) * 1000 : undefined);
      }
    },
    health: () => health,
  };
}
