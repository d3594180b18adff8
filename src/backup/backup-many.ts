import { availableParallelism } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { runInWorker } from '../core/worker.js';
import { AnimusError, type ErrorCode, type ExitCode } from '../core/errors.js';
import { runPool, type Outcome } from '../core/pool.js';
import type { AgentPaths } from '../home/layout.js';
import { backupAgent, type BackupOptions, type BackupResult } from './create-backup.js';

export interface BackupManyOptions extends Omit<BackupOptions, 'now'> {
  /** Threads sharing the work; default one per core for large runs. */
  threads?: number;
  onDone?: (done: number) => void;
  /** Ctrl-C: backups under way finish (no partial file is left), the rest are not started. */
  signal?: AbortSignal;
}

/** Below this many agents a thread's start-up costs more than it saves. */
const AGENTS_PER_THREAD = 100;

interface WorkerJob {
  targets: AgentPaths[];
  outDir: string;
  keep?: number;
  key?: { key: Uint8Array; params: NonNullable<BackupOptions['key']>['params'] };
}

type WireOutcome = { ok: true; value: BackupResult } | { ok: false; error: { code?: ErrorCode; exitCode?: ExitCode; message: string } };

/**
 * Backs up many agents in one process: each archive's work (serialize, quick_check,
 * hashing, encryption) is CPU-bound once the files are cached, so `--all` over a large
 * home is split across worker threads, one per core, each with its own pool of
 * overlapping backups. Outcomes keep the input order; one agent's failure never
 * stops the others.
 */
export async function backupMany(targets: AgentPaths[], options: BackupManyOptions): Promise<Outcome<BackupResult>[]> {
  const bundled = import.meta.url.endsWith('.js');
  const count = Math.max(1, Math.min(options.threads ?? (bundled ? availableParallelism() : 1), Math.ceil(targets.length / AGENTS_PER_THREAD), 8));
  let done = 0;
  const tick = () => options.onDone?.(++done);
  if (count === 1 || !bundled) return backupSlice(targets, options, tick, () => options.signal?.aborted === true);
  const size = Math.ceil(targets.length / count);
  const slices = Array.from({ length: count }, (_, i) => targets.slice(i * size, (i + 1) * size));
  const [own, ...others] = slices;
  const job = { outDir: options.outDir, keep: options.keep, key: options.key ? { key: options.key.key, params: options.key.params } : undefined };
  const remote = others.map((slice) =>
    runInWorker<WireOutcome[]>(import.meta.url, 'runBackupWorker', { animusBackupJob: { ...job, targets: slice } }, { onProgress: tick, signal: options.signal }).then((wire) => wire.map(fromWire)),
  );
  const local = await backupSlice(own!, options, tick, () => options.signal?.aborted === true);
  return [...local, ...(await Promise.all(remote)).flat()];
}

function backupSlice(targets: AgentPaths[], options: Omit<BackupOptions, 'now'>, tick: () => void, stopped: () => boolean): Promise<Outcome<BackupResult>[]> {
  return runPool(targets, 8, async (paths) => {
    if (stopped()) throw new AnimusError('EINTERRUPTED', `backup of ${paths.agent.id} not started: interrupted`);
    try {
      return await backupAgent(paths, options);
    } finally {
      tick();
    }
  });
}

/** Entry of a backup worker thread (see backupMany). */
export async function runBackupWorker(): Promise<void> {
  const job = (workerData as { animusBackupJob?: WorkerJob } | undefined)?.animusBackupJob;
  if (!job || !parentPort) return;
  const port = parentPort;
  let stopped = false;
  port.on('message', (message) => {
    if (message === 'stop') stopped = true;
  });
  const key = job.key ? { key: Buffer.from(job.key.key), params: job.key.params } : undefined;
  const outcomes = await backupSlice(job.targets, { outDir: job.outDir, keep: job.keep, key }, () => port.postMessage({ progress: true }), () => stopped);
  port.removeAllListeners('message');
  port.postMessage({ result: outcomes.map(toWire) });
}

function toWire(outcome: Outcome<BackupResult>): WireOutcome {
  if (outcome.ok) return outcome;
  const error = outcome.error;
  if (error instanceof AnimusError) return { ok: false, error: { code: error.code, exitCode: error.exitCode, message: error.message } };
  return { ok: false, error: { message: error instanceof Error ? error.message : String(error) } };
}

function fromWire(outcome: WireOutcome): Outcome<BackupResult> {
  if (outcome.ok) return outcome;
  const { code, exitCode, message } = outcome.error;
  return { ok: false, error: code ? new AnimusError(code, message, { exitCode }) : new Error(message) };
}
