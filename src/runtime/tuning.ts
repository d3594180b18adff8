import type { EnvMap } from '../config/env-file.js';
import { envMs } from './backoff.js';

/**
 * Schedules and limits of the runtime, with the optional .env variables that change
 * them (operators stretch or shorten them; tests make them milliseconds). Defaults
 * suit a hosted Letta agent answering a chat.
 */
export interface Tuning {
  /** ANIMUS_RETRY_BASE_MS / _MAX_MS: agent request backoff (attempt n waits about base·2^(n-1), capped). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** ANIMUS_RATE_LIMIT_BASE_MS: backoff base after a 429 without Retry-After (a provider's limit lasts tens of seconds). */
  rateLimitBaseMs: number;
  /** ANIMUS_RUN_POLL_MAX_MS: longest pause between two looks at a Letta run still going on. */
  runPollMaxMs: number;
  /** ANIMUS_BREAKER_THRESHOLD consecutive failures open the circuit for ANIMUS_BREAKER_COOLDOWN_MS (doubling up to 10 min). */
  breakerThreshold: number;
  breakerCooldownMs: number;
  breakerMaxCooldownMs: number;
  /** ANIMUS_DELIVERY_RETRY_BASE_MS / _MAX_MS / ANIMUS_DELIVERY_MAX_ATTEMPTS: reply delivery retries. */
  deliveryRetryBaseMs: number;
  deliveryRetryMaxMs: number;
  deliveryMaxAttempts: number;
  /** ANIMUS_RECOVER_EVERY_MS: how often items left `processing` by a crash are looked for. */
  recoverEveryMs: number;
  /** ANIMUS_SETTINGS_POLL_MS: settings.json poll, the fallback behind the folder watch. */
  settingsPollMs: number;
  /** ANIMUS_STOP_GRACE_MS: how long SIGTERM lets the in-flight request finish (at most 7 s). */
  stopGraceMs: number;
}

export const MAX_STOP_GRACE_MS = 7000;

export function readTuning(env: EnvMap): Tuning {
  const whole = (key: string, fallback: number) => Math.max(1, Math.round(envMs(env, key, fallback)));
  return {
    retryBaseMs: envMs(env, 'ANIMUS_RETRY_BASE_MS', 2000),
    retryMaxMs: envMs(env, 'ANIMUS_RETRY_MAX_MS', 5 * 60_000),
    rateLimitBaseMs: envMs(env, 'ANIMUS_RATE_LIMIT_BASE_MS', 20_000),
    runPollMaxMs: whole('ANIMUS_RUN_POLL_MAX_MS', 1000),
    breakerThreshold: whole('ANIMUS_BREAKER_THRESHOLD', 5),
    breakerCooldownMs: envMs(env, 'ANIMUS_BREAKER_COOLDOWN_MS', 30_000),
    breakerMaxCooldownMs: 10 * 60_000,
    deliveryRetryBaseMs: envMs(env, 'ANIMUS_DELIVERY_RETRY_BASE_MS', 2000),
    deliveryRetryMaxMs: envMs(env, 'ANIMUS_DELIVERY_RETRY_MAX_MS', 10 * 60_000),
    deliveryMaxAttempts: whole('ANIMUS_DELIVERY_MAX_ATTEMPTS', 8),
    recoverEveryMs: whole('ANIMUS_RECOVER_EVERY_MS', 60_000),
    settingsPollMs: whole('ANIMUS_SETTINGS_POLL_MS', 5000),
    stopGraceMs: Math.min(MAX_STOP_GRACE_MS, envMs(env, 'ANIMUS_STOP_GRACE_MS', MAX_STOP_GRACE_MS)),
  };
}
