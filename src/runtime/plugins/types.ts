import type { Database } from 'better-sqlite3';
import type { EnvMap } from '../../config/env-file.js';
import type { PluginName, Settings } from '../../config/settings.js';
import type { RuntimeStateWriter } from '../../instances/runtime-state.js';
import type { InboundMessage, InboundResult } from '../../store/inbound.js';
import type { Logger } from '../logger.js';

/**
 * What every chat platform plugs in through. A plugin turns platform events into
 * stored inbound messages (`ctx.store`, which also wakes the queue worker) and sends
 * replies when the delivery worker asks (`deliver`), throwing DeliveryError to say
 * whether trying again later can help.
 */
export interface Plugin {
  readonly name: PluginName;
  /** The platform_profiles.platform value of the messages it stores and delivers. */
  readonly platform: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  deliver(target: DeliveryTarget, text: string, signal: AbortSignal): Promise<void>;
  health(): PluginHealth;
}

export interface DeliveryTarget {
  /** The message row being answered. */
  messageId: number;
  chatId: string;
  /** The platform id of the message being answered (replies thread under it where the platform can). */
  replyTo: string | null;
  /**
   * A reply split into parts: how many went out in an earlier attempt (this one starts
   * after them), and where to record each part as it goes, so that neither a retry nor
   * a restart sends a part twice.
   */
  partsSent: number;
  partSent(parts: number): void;
}

export interface PluginHealth {
  ok: boolean;
  detail: string;
}

export interface PluginContext {
  agentDir: string;
  agentId: string;
  db: Database;
  env: EnvMap;
  logger: Logger;
  settings(): Settings;
  /** Stores one inbound message in one transaction and wakes the worker. */
  store(message: InboundMessage): InboundResult;
  /** Wakes the queue worker (a message was stored by someone else, e.g. `animus send`). */
  wake(): void;
  /** Replaces secret values in text that is about to be logged or stored. */
  redact(text: string): string;
  /** What `health` reads about the plugin (its section of runtime-state.json, named after the plugin). */
  state: Pick<RuntimeStateWriter, 'set' | 'get' | 'clear'>;
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    /** Not a failure: the platform's pacing says "later" (per-chat send rate, 429 retry_after); no attempt is counted. */
    readonly deferred = false,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }

  static later(reason: string, ms: number): DeliveryError {
    return new DeliveryError(reason, true, ms, true);
  }
}

export type PluginFactory = (ctx: PluginContext) => Plugin | Promise<Plugin>;
