import { AnimusError } from '../core/errors.js';
import { isPlaceholder } from '../config/env-file.js';
import { readEnv } from '../instances/agent-files.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { requireAgent } from '../instances/registry.js';
import { BotApi, TelegramApiError, webhookOrigin, type WebhookInfo } from './plugins/telegram-bot-api.js';

/**
 * `animus telegram webhook delete <id>`: removes a webhook left on an agent's bot
 * token (by another bot framework, a hosting service, an old deployment). While one is
 * set Telegram answers the runtime's getUpdates with 409 and the agent hears nothing;
 * the runtime reports it with this command as the fix. It uses the token from the
 * agent's own .env, under the agent's operation lock (it changes the agent's state at
 * Telegram), and keeps the updates waiting so the agent answers them.
 */
export interface WebhookDeleteOptions {
  home: string;
  id: string;
  /** Where TELEGRAM_API_ROOT comes from when the .env does not set it. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export interface WebhookDeleteResult {
  agent: string;
  /** Whether a webhook was set; its URL is shown by origin only (its path may hold a secret). */
  wasSet: boolean;
  origin?: string;
  pendingUpdates?: number;
}

export async function deleteTelegramWebhook(options: WebhookDeleteOptions): Promise<WebhookDeleteResult> {
  const paths = await requireAgent(options.home, options.id);
  return withAgentLock(paths, { command: 'telegram webhook delete', signal: options.signal }, async () => {
    const env = await readEnv(paths);
    const token = env.TELEGRAM_BOT_TOKEN?.trim() ?? '';
    if (token === '' || isPlaceholder(token, 'TELEGRAM_BOT_TOKEN')) {
      throw new AnimusError('EBADENV', `${paths.agent.id} has no TELEGRAM_BOT_TOKEN in ${paths.env}: set the bot's token there first`);
    }
    const api = new BotApi(token, env.TELEGRAM_API_ROOT?.trim() || options.env?.TELEGRAM_API_ROOT?.trim() || undefined);
    const signal = options.signal ?? new AbortController().signal;
    try {
      const info = await api.call<WebhookInfo>('getWebhookInfo', {}, signal, 15_000);
      if (!info.url) return { agent: paths.agent.id, wasSet: false };
      await api.call('deleteWebhook', { drop_pending_updates: false }, signal, 15_000);
      return { agent: paths.agent.id, wasSet: true, origin: webhookOrigin(info.url), pendingUpdates: info.pending_update_count ?? 0 };
    } catch (error) {
      if (!(error instanceof TelegramApiError)) throw error;
      if (error.status === 401) throw new AnimusError('EFAILED', `Telegram refused the bot token of ${paths.agent.id} (401 Unauthorized): put the current token from @BotFather in ${paths.env}`);
      if (error.status === 0) throw new AnimusError('EIO', `cannot reach Telegram (${error.description}): nothing was changed; try again`);
      throw new AnimusError('EFAILED', `${error.message}: nothing was changed`);
    }
  });
}

