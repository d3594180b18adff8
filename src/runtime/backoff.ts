/**
 * Exponential backoff with jitter for queue retries: attempt n waits between half
 * and all of base·2^(n-1), capped. The jitter keeps a fleet of agents that failed
 * together (a Letta outage) from retrying in lockstep.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const random = options.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Reads a millisecond override from the environment (operators and tests shorten or lengthen the schedule). */
export function envMs(env: Record<string, string | undefined>, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : fallback;
}
