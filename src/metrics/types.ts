import type { ProcessManagerName } from '../config/settings.js';
import type { ProcessState } from '../process/types.js';

/**
 * What animus measures per agent, from the agent's own database and its process. A
 * value the agent's database cannot hold (a Broca-made file has no latency, tokens,
 * delivery or agent_requests) is `null`: absent, never a made-up zero.
 */
export const WINDOWS = ['1h', '24h', 'all'] as const;
export type WindowName = (typeof WINDOWS)[number];
export const WINDOW_MS: Record<Exclude<WindowName, 'all'>, number> = { '1h': 3_600_000, '24h': 86_400_000 };

export interface LatencySummary {
  /** Replies the quantiles were taken over. */
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface TokenCounts {
  prompt: number;
  completion: number;
  total: number;
}

/** Agent requests (migration 3's agent_requests, one row per attempt). */
export interface RequestCounts {
  attempts: number;
  replied: number;
  /** Attempts that ended in a retry being scheduled. */
  retries: number;
  /** Attempts that did not reply (retried, failed, abandoned), by error kind (`unknown` when none was recorded). */
  failures: number;
  failuresByKind: Record<string, number>;
  /** Stop reasons other than end_turn, by reason. */
  stopReasons: Record<string, number>;
}

export interface WindowMetrics {
  /** Messages stored (received), by their timestamp. */
  messagesIn: number;
  /** Messages the agent answered, by the time the answer was delivered (else the message's time). */
  messagesOut: number;
  /** Reply latency in ms (null: the database keeps none). */
  latencyMs: LatencySummary | null;
  tokens: TokenCounts | null;
  requests: RequestCounts | null;
  /** Replies whose delivery to the chat failed for good. */
  deliveryFailures: number | null;
}

export interface QueueMetrics {
  pending: number;
  processing: number;
  failed: number;
  /** Pending items that already failed at least once and wait for their retry. */
  retrying: number;
  oldestPendingAgeS: number | null;
}

/** What one database says; computed in a worker thread or here. */
export interface DatabaseMetrics {
  schemaVersion: number;
  windows: Record<WindowName, WindowMetrics>;
  queue: QueueMetrics;
}

export interface ProcessMetrics {
  manager?: ProcessManagerName;
  state: ProcessState;
  pid?: number;
  uptimeMs?: number;
  /** Every restart the manager counts. */
  restarts?: number;
  /** Restarts that animus did not ask for: crashes and memory-limit restarts. */
  crashRestarts?: number;
  rssBytes?: number;
  cpuPercent?: number;
  problem?: string;
}

export interface AgentMetrics {
  id: string;
  name: string;
  /** When the numbers were taken (ISO). */
  collectedAt: string;
  /** The database's numbers; absent (with `problem`) when it could not be read. */
  database?: DatabaseMetrics;
  process: ProcessMetrics;
  /** Why some numbers are missing (unreadable database or settings). */
  problem?: string;
}
