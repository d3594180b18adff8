import type { Database } from 'better-sqlite3';
import { PLATFORMS } from '../store/inbound.js';
import { deferDelivery, dueDeliveries, failDelivery, markDelivered, markPartsDelivered, nextDeliveryAt, retryDelivery, type DeliveryItem } from '../store/work-queue.js';
import { backoffDelay } from './backoff.js';
import { errorText, type Logger } from './logger.js';
import type { PluginRegistry } from './plugins/registry.js';
import { DeliveryError } from './plugins/types.js';
import { Sleeper } from './sleeper.js';

/**
 * Sends stored replies to their platform, apart from the agent lane: a reply that
 * cannot be sent now (Telegram down, 429, plugin stopped) waits with a due time and
 * is tried again later, never re-asked of the agent.
 */
export interface DeliveryOptions {
  db: Database;
  logger: Logger;
  plugins: PluginRegistry;
  refreshMs: () => number;
  redact: (text: string) => string;
  retryBaseMs: number;
  retryMaxMs: number;
  maxAttempts: number;
}

/** Replies taken up per look at the table. */
const DELIVERY_BATCH = 20;

export class DeliveryWorker {
  private readonly sleeper = new Sleeper();
  private stopping = false;
  private current: { controller: AbortController; done: Promise<void> } | undefined;

  constructor(private readonly options: DeliveryOptions) {}

  wake(): void {
    this.sleeper.wake();
  }

  async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.step();
      } catch (error) {
        this.options.logger.error('delivery worker error; retrying shortly', { error: this.options.redact(errorText(error)) });
        await this.sleeper.sleep(Math.max(1000, this.options.refreshMs()));
      }
    }
  }

  private async step(): Promise<void> {
    const { db } = this.options;
    const due = dueDeliveries(db, Date.now(), DELIVERY_BATCH);
    for (const item of due) {
      if (this.stopping) return;
      const controller = new AbortController();
      const done = this.deliver(item, controller.signal);
      this.current = { controller, done };
      try {
        await done;
      } finally {
        this.current = undefined;
      }
    }
    // A full batch may have more behind it; a short one emptied what was due (a reply stored
    // meanwhile wakes the worker, and the sleep below then returns at once). A batch holds one
    // reply per chat: the chat's next reply, freed by sending this one, is what `next` finds.
    if (due.length >= DELIVERY_BATCH) return;
    const next = nextDeliveryAt(db);
    const refresh = this.options.refreshMs();
    await this.sleeper.sleep(next === undefined ? refresh : Math.min(refresh, Math.max(1, next - Date.now())));
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.sleeper.wake();
    const current = this.current;
    if (!current) return;
    const timer = setTimeout(() => current.controller.abort(), graceMs);
    await current.done.catch(() => {});
    clearTimeout(timer);
  }

  private async deliver(item: DeliveryItem, signal: AbortSignal): Promise<void> {
    const { db, logger, plugins } = this.options;
    const log = { message: item.messageId, platform: item.platform ?? undefined };
    if (item.platform === PLATFORMS.local) {
      markDelivered(db, item.messageId);
      return;
    }
    if (item.chatId === null) {
      failDelivery(db, item.messageId, 'no chat to send the reply to (the message has no platform profile)');
      logger.error('reply cannot be delivered: no chat', log);
      return;
    }
    const plugin = plugins.forPlatform(item.platform);
    try {
      if (!plugin) throw new DeliveryError(`no running plugin delivers to platform ${item.platform ?? 'unknown'}: enable it in settings.json`, true);
      const target = { messageId: item.messageId, chatId: item.chatId, replyTo: item.platformMessageId, partsSent: item.partsSent, partSent: (parts: number) => markPartsDelivered(db, item.messageId, parts) };
      await plugin.deliver(target, item.reply, signal);
      markDelivered(db, item.messageId);
      logger.info('reply delivered', { ...log, attempt: item.attempts + 1 });
    } catch (error) {
      const failure = error instanceof DeliveryError ? error : new DeliveryError(errorText(error), true);
      const message = this.options.redact(failure.message);
      if (signal.aborted) {
        // Stopping: not the platform's fault, so the attempt is not counted against it.
        logger.info('reply delivery interrupted by shutdown; will be sent at next start', log);
        return;
      }
      if (failure.deferred) {
        deferDelivery(db, item.messageId, Date.now() + (failure.retryAfterMs ?? 0));
        logger.debug('reply delivery paced', { ...log, retry_in_ms: failure.retryAfterMs, reason: message });
        return;
      }
      const attempt = item.attempts + 1;
      if (failure.retryable && attempt < this.options.maxAttempts) {
        const delay = Math.max(backoffDelay(attempt, { baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs }), failure.retryAfterMs ?? 0);
        retryDelivery(db, item.messageId, message, Date.now() + delay);
        logger.warn('reply delivery failed; will retry', { ...log, attempt, retry_in_ms: delay, error: message });
      } else {
        failDelivery(db, item.messageId, message);
        logger.error('reply delivery failed for good', { ...log, attempt, error: message });
      }
    }
  }
}
