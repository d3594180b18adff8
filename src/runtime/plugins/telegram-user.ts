import { PLATFORMS } from '../../store/inbound.js';
import { splitMessage } from '../format.js';
import { errorText } from '../logger.js';
import type { MtprotoAdapter, MtprotoAdapterFactory, UserMessage } from './mtproto-adapter.js';
import { DeliveryError, type Plugin, type PluginContext, type PluginHealth } from './types.js';

/**
 * A Telegram user account over MTProto (through MtprotoAdapter). MTProto does not
 * replay what arrived while the runtime was down, so at start it reads recent
 * private history newer than the last message it stored and queues what it missed;
 * the message-id check in the store keeps anything already stored from coming twice.
 */
export function createTelegramUserPlugin(ctx: PluginContext, factory: MtprotoAdapterFactory): Plugin {
  let adapter: MtprotoAdapter | undefined;
  let health: PluginHealth = { ok: false, detail: 'not started' };

  const store = (message: UserMessage, source: 'live' | 'catch-up') => {
    try {
      const result = ctx.store({
        platform: PLATFORMS.telegramUser,
        platformUserId: message.senderId,
        username: message.username,
        displayName: message.displayName,
        chatId: message.chatId,
        platformMessageId: message.id,
        text: message.text,
        timestamp: new Date(message.date * 1000).toISOString(),
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
        return;
      }
      health = { ok: true, detail: 'connected' };
      ctx.logger.info('telegram user account connected');
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
