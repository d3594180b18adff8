import type { ProcessManagerName } from '../config/settings.js';
import type { AgentPaths } from '../home/layout.js';

/**
 * The contract every process manager implements (PM2, systemd). Commands and the
 * fleet operations (deploy --start, remove, health, update) speak only to this.
 */
export type ProcessState = 'online' | 'starting' | 'stopping' | 'stopped' | 'errored' | 'not-registered' | 'unknown';

/** States in which an instance counts as running: stop it before touching its files, start it again after. */
export const RUNNING_STATES: ReadonlySet<ProcessState> = new Set(['online', 'starting', 'errored']);

export interface ProcessInfo {
  /** Agent id, `agent-<uuid>`. */
  id: string;
  manager: ProcessManagerName;
  state: ProcessState;
  pid?: number;
  uptimeMs?: number;
  restarts?: number;
  /** Restarts animus did not ask for (crashes, memory limit): PM2's count less those animus noted; systemd's NRestarts. */
  crashRestarts?: number;
  memoryBytes?: number;
  cpuPercent?: number;
}

export interface ProcessActionResult {
  id: string;
  /** What happened: `already` means it was in the requested state (exit 0, with a note). */
  outcome: 'done' | 'already' | 'failed';
  info?: ProcessInfo;
  /** For failures: one line saying what went wrong; for `already`, the note. */
  message?: string;
  /** For failures: the AnimusError code (EFAILED for a start that did not stay up). */
  code?: string;
  /** For failures at start: the last lines of the agent's log. */
  logTail?: string[];
}

export interface ProcessManager {
  readonly name: ProcessManagerName;
  /** Registers (if needed) and starts each agent; resolves once each is verified up or has failed. */
  start(agents: AgentPaths[]): Promise<ProcessActionResult[]>;
  stop(agents: AgentPaths[]): Promise<ProcessActionResult[]>;
  restart(agents: AgentPaths[]): Promise<ProcessActionResult[]>;
  /** Forgets the agent (pm2 delete, systemctl disable); used by remove. */
  unregister(agents: AgentPaths[]): Promise<void>;
  /** State of the given agents (all of this home's agents it knows when omitted). */
  status(agents?: AgentPaths[]): Promise<ProcessInfo[]>;
  /** Loads what status needs, so that a status call made next asks at once (health asks before its checks hold the thread). */
  prepareStatus?(): Promise<void>;
  /** Releases the connection (PM2's bus) so the command can exit. Always called. */
  close(): Promise<void>;
}
