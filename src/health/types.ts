import type { ProcessState } from '../process/types.js';

/**
 * What `animus health` reports. The JSON shape is documented and stable: scripts key
 * on `healthy`, each agent's `healthy`, and each check's `name` and `status`.
 */

/** `fail` makes the agent unhealthy; `warn` is worth a look; `unknown` could not be told (never a failure). */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'unknown';

export const CHECK_NAMES = ['folder', 'files', 'restore', 'env', 'settings', 'database', 'schema', 'clone', 'logs', 'process', 'letta', 'telegram', 'queue', 'reply'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

export interface CheckResult {
  name: CheckName;
  status: CheckStatus;
  /** One line for people: what was found, and for warn/fail what to do. */
  message: string;
}

export interface QueueFacts {
  pending: number;
  processing: number;
  failed: number;
  /** Seconds since the oldest pending item was queued; null with nothing pending. */
  oldestPendingAgeS: number | null;
}

export interface AgentHealth {
  id: string;
  dir: string;
  healthy: boolean;
  checks: CheckResult[];
  /** Facts gathered on the way (null where they could not be read). */
  facts: {
    mode: string | null;
    processManager: string | null;
    commit: string | null;
    dirty: boolean | null;
    /** Commits the clone is behind its origin: 0 up to date, -1 behind by a count not known (not fetched), null when it cannot tell. */
    behind: number | null;
    schemaVersion: number | null;
    logsBytes: number | null;
    processState: ProcessState | null;
    pid: number | null;
    queue: QueueFacts | null;
    lastReplyAt: string | null;
  };
}

export interface HealthReport {
  home: string;
  checkedAt: string;
  durationMs: number;
  healthy: boolean;
  summary: { agents: number; healthy: number; unhealthy: number; warnings: number };
  /** Whether process state could be asked; when not, every process check is `unknown`. */
  processManagers: Array<{ name: string; available: boolean; message?: string }>;
  agents: AgentHealth[];
}

export interface HealthThresholds {
  /** A pending item older than this means the queue is stuck (fail). */
  maxPendingAgeS: number;
  /** logs/ above this many bytes is a warning (rotate or prune). */
  maxLogsBytes: number;
}

export const DEFAULT_THRESHOLDS: HealthThresholds = {
  maxPendingAgeS: 600,
  maxLogsBytes: 1024 ** 3,
};
