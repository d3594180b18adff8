import type { Database } from 'better-sqlite3';
import type { Settings } from '../config/settings.js';
import { claimNext, completeItem, failItem, nextDueAt, recoverStale, releaseItem, retryItem, type ClaimedItem, type Usage } from '../store/work-queue.js';
import { backoffDelay } from './backoff.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { formatAgentInput } from './format.js';
import { AgentCallError, type AgentClient } from './letta.js';
import { errorText, type Logger } from './logger.js';
import { Sleeper } from './sleeper.js';

/**
 * The queue processor: one agent request in flight per agent (Letta forbids
 * concurrent requests to one agent), oldest due item first. A failed request puts
 * its item back with a due time and the worker goes on with other items; it never
 * sleeps holding the agent's only lane.
 */
export interface WorkerOptions {
  db: Database;
  logger: Logger;
  settings: () => Settings;
  /** The agent client, created on first live use. */
  agent: () => Promise<AgentClient>;
  breaker: CircuitBreaker;
  redact: (text: string) => string;
  retryBaseMs: number;
  retryMaxMs: number;
  /** How often items left `processing` by a crash are looked for while running. */
  recoverEveryMs: number;
  /** A reply was stored: wake the delivery worker. */
  onReply: () => void;
}

interface InFlight {
  queueId: number;
  controller: AbortController;
  done: Promise<void>;
}

export class QueueWorker {
  private readonly sleeper = new Sleeper();
  private stopping = false;
  private inFlight: InFlight | undefined;
  private lastRecovery = Date.now();

  constructor(private readonly options: WorkerOptions) {}

  wake(): void {
    this.sleeper.wake();
  }

  /** Items left `processing` by a runtime that died (all of them at start: the pid lock says none is ours). */
  recover(claimedBefore: number = Number.POSITIVE_INFINITY): void {
    const { db, logger, settings } = this.options;
    const result = recoverStale(db, { maxAttempts: settings().max_retries + 1, claimedBefore, exceptId: this.inFlight?.queueId });
    for (const id of result.requeued) logger.warn('item left processing by a stopped runtime returned to the queue', { item: id });
    for (const id of result.failed) logger.error('item left processing by a stopped runtime has used its attempts: failed', { item: id });
    this.lastRecovery = Date.now();
  }

  async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.step();
      } catch (error) {
        // A database that stays locked or a full disk: keep the process, try again shortly.
        this.options.logger.error('queue worker error; retrying shortly', { error: this.options.redact(errorText(error)) });
        await this.sleeper.sleep(Math.max(1000, this.options.settings().queue_refresh * 1000));
      }
    }
  }

  private async step(): Promise<void> {
    const { db, settings, breaker } = this.options;
    const current = settings();
    const refreshMs = current.queue_refresh * 1000;
    if (Date.now() - this.lastRecovery >= this.options.recoverEveryMs) {
      this.recover(Date.now() - (current.letta.timeout_s * 1000 + this.options.recoverEveryMs));
    }
    // listen: messages are stored and stay pending; nothing is sent to the agent.
    if (current.message_mode === 'listen') {
      await this.sleeper.sleep(refreshMs);
      return;
    }
    if (current.message_mode === 'live' && !breaker.allow()) {
      await this.sleeper.sleep(Math.min(refreshMs, Math.max(0, breaker.retryAt - Date.now())) || refreshMs);
      return;
    }
    const item = claimNext(db);
    if (!item) {
      const due = nextDueAt(db);
      await this.sleeper.sleep(due === undefined ? refreshMs : Math.min(refreshMs, Math.max(1, due - Date.now())));
      return;
    }
    const controller = new AbortController();
    const done = this.process(item, current, controller.signal);
    this.inFlight = { queueId: item.queueId, controller, done };
    try {
      await done;
    } finally {
      this.inFlight = undefined;
    }
  }

  /** Lets the in-flight request finish for up to graceMs, then abandons it and returns its item to the queue. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.sleeper.wake();
    const inFlight = this.inFlight;
    if (!inFlight) return;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), graceMs);
    });
    const settled = inFlight.done.then(
      () => 'done' as const,
      () => 'done' as const,
    );
    const outcome = await Promise.race([settled, expired]);
    clearTimeout(timer);
    if (outcome === 'expired') {
      inFlight.controller.abort();
      await settled;
    }
  }

  private async process(item: ClaimedItem, settings: Settings, signal: AbortSignal): Promise<void> {
    const { db, logger } = this.options;
    const mode = settings.message_mode;
    if (item.messageId === null || item.text === null) {
      failItem(db, item.queueId, 'the queue item has no message row');
      logger.error('item has no message: failed', { item: item.queueId });
      return;
    }
    const input = formatAgentInput(item, item.text);
    const started = performance.now();
    try {
      let reply: string;
      let usage: Usage | undefined;
      let latencyMs: number;
      if (mode === 'echo') {
        reply = input;
        latencyMs = performance.now() - started;
      } else {
        logger.debug('sending to the agent', { item: item.queueId, attempt: item.attempts });
        const answer = await this.ask(item, input, settings, signal);
        ({ reply, usage, latencyMs } = answer);
        this.options.breaker.success();
      }
      completeItem(db, { queueId: item.queueId, messageId: item.messageId, reply, latencyMs, usage });
      logger.info('item completed', {
        item: item.queueId,
        mode,
        attempt: item.attempts,
        latency_ms: Math.round(latencyMs),
        total_tokens: usage?.totalTokens ?? undefined,
        reply_chars: reply.length,
      });
      this.options.onReply();
    } catch (error) {
      this.handleFailure(item, settings, error, signal);
    }
  }

  private async ask(item: ClaimedItem, input: string, settings: Settings, signal: AbortSignal) {
    const client = await this.options.agent();
    const timeoutMs = settings.letta.timeout_s * 1000;
    if (!settings.letta.attach_user_block || item.lettaUserId === null) return client.send(input, { signal, timeoutMs });
    const blockId = item.lettaBlockId ?? (await this.createUserBlock(client, item, signal, timeoutMs));
    try {
      await client.attachBlock(blockId, { signal, timeoutMs });
      return await client.send(input, { signal, timeoutMs });
    } finally {
      // Detach on every path (even a failed attach may have reached the server), with a
      // signal of its own: a shutdown abort must not leave the user's block on the agent.
      await client.detachBlock(blockId, { signal: AbortSignal.timeout(2000), timeoutMs: 2000 }).catch((error: unknown) => {
        this.options.logger.warn('could not detach the user block', { item: item.queueId, block: blockId, error: this.options.redact(errorText(error)) });
      });
    }
  }

  private async createUserBlock(client: AgentClient, item: ClaimedItem, signal: AbortSignal, timeoutMs: number): Promise<string> {
    const value = [`Username: ${item.username ? `@${item.username}` : 'unknown'}`, `Name: ${item.displayName ?? 'unknown'}`, `Telegram ID: ${item.platformUserId ?? 'unknown'}`].join('\n');
    const blockId = await client.createUserBlock(`human_${item.lettaUserId}`, value, { signal, timeoutMs });
    this.options.db.prepare('UPDATE letta_users SET letta_block_id = ? WHERE id = ?').run(blockId, item.lettaUserId);
    return blockId;
  }

  private handleFailure(item: ClaimedItem, settings: Settings, error: unknown, signal: AbortSignal): void {
    const { db, logger, breaker } = this.options;
    const failure = error instanceof AgentCallError ? error : new AgentCallError(errorText(error), true);
    if (failure.aborted || signal.aborted) {
      releaseItem(db, item.queueId);
      logger.info('item returned to the queue: the runtime is stopping', { item: item.queueId });
      return;
    }
    // 422 is about this message, not the endpoint's health.
    if (failure.status !== 422) breaker.failure();
    const message = this.options.redact(failure.message);
    const retriesLeft = settings.max_retries - (item.attempts - 1);
    if (failure.retryable && retriesLeft > 0) {
      const delay = Math.max(backoffDelay(item.attempts, { baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs }), failure.retryAfterMs ?? 0);
      retryItem(db, item.queueId, message, Date.now() + delay);
      logger.warn('agent request failed; will retry', { item: item.queueId, attempt: item.attempts, retry_in_ms: delay, status: failure.status, error: message });
    } else {
      failItem(db, item.queueId, message);
      logger.error(failure.retryable ? 'agent request failed; no retries left' : 'agent request failed; not retryable', {
        item: item.queueId,
        attempt: item.attempts,
        status: failure.status,
        error: message,
      });
    }
  }
}
