import { availableParallelism } from 'node:os';
import { runInWorker, WORKERS_AVAILABLE } from '../core/worker.js';
import { AnimusError, type ErrorCode, type ExitCode } from '../core/errors.js';
import { runPool, type Outcome } from '../core/pool.js';
import type { AgentPaths } from '../home/layout.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { backupAgent, prepareBackupRoot, type BackupOptions, type BackupResult } from './create-backup.js';

export interface BackupManyOptions extends Omit<BackupOptions, 'now'> {
  /** Threads sharing the work; default one per core for large runs. */
  threads?: number;
  onDone?: (done: number) => void;
  /** Ctrl-C: backups under way finish (no partial file is left), the rest are not started. */
  signal?: AbortSignal;
}

/** Below this many agents a thread's start-up costs more than it saves. */
const AGENTS_PER_THREAD = 100;

/** Backups under way at once in each thread: the fsync of one overlaps the work of the others. */
const POOL = 8;

interface WorkerJob {
  targets: AgentPaths[];
  /** Int32Array view: [0] the next target to claim, [1] backups finished (all threads). */
  counters: SharedArrayBuffer;
  outDir: string;
  keep?: number;
  key?: { key: Uint8Array; params: NonNullable<BackupOptions['key']>['params'] };
}

type WireOutcome = { ok: true; value: BackupResult } | { ok: false; error: { code?: ErrorCode; exitCode?: ExitCode; message: string } };

/**
 * Backs up many agents in one process: each archive's work (serialize, integrity_check,
 * hashing, encryption) is CPU-bound once the files are cached, so `--all` over a large
 * home is shared by worker threads, one per core, each with its own pool of
 * overlapping backups. Threads claim agents one at a time from a shared counter
 * rather than taking fixed slices, so a thread that started later or met bigger
 * databases does not leave the others idle at the end. Outcomes keep the input
 * order; one agent's failure never stops the others.
 */
export async function backupMany(targets: AgentPaths[], options: BackupManyOptions): Promise<Outcome<BackupResult>[]> {
  prepareBackupRoot(options.outDir);
  const count = Math.max(1, Math.min(options.threads ?? (WORKERS_AVAILABLE ? availableParallelism() : 1), Math.ceil(targets.length / AGENTS_PER_THREAD), 8));
  const stopped = () => options.signal?.aborted === true;
  if (count === 1 || !WORKERS_AVAILABLE) {
    let done = 0;
    return runPool(targets, POOL, (paths) => backupOne(paths, options, stopped, () => options.onDone?.(++done)));
  }
  const buffer = new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT);
  const counters = new Int32Array(buffer);
  const report = () => options.onDone?.(Atomics.load(counters, 1));
  // The workers' progress, while this thread is busy with its own share or waits for theirs.
  const timer = options.onDone ? setInterval(report, 100) : undefined;
  timer?.unref();
  try {
    const job = { targets, counters: buffer, outDir: options.outDir, keep: options.keep, key: options.key ? { key: options.key.key, params: options.key.params } : undefined };
    const remote = Array.from({ length: count - 1 }, () =>
      runInWorker<Array<[number, WireOutcome]>>('backup', { animusBackupJob: job }, { signal: options.signal }).then((wire) => wire.map(([i, o]) => [i, fromWire(o)] as const)),
    );
    // Handled now, thrown below: a worker that fails while this thread works is not an unhandled rejection.
    const others = Promise.all(remote);
    others.catch(() => {});
    const local = await backupClaimed(targets, counters, options, stopped);
    const outcomes: Outcome<BackupResult>[] = new Array(targets.length);
    for (const [i, outcome] of [...local, ...(await others).flat()]) outcomes[i] = outcome;
    return outcomes;
  } finally {
    if (timer) clearInterval(timer);
    report();
  }
}

async function backupOne(paths: AgentPaths, options: Omit<BackupOptions, 'now'>, stopped: () => boolean, tick: () => void): Promise<BackupResult> {
  if (stopped()) throw new AnimusError('EINTERRUPTED', `backup of ${paths.agent.id} not started: interrupted`);
  try {
    return await withAgentLock(paths, { command: 'backup' }, () => backupAgent(paths, options));
  } finally {
    tick();
  }
}

/** This thread's share: targets claimed one at a time from the shared counter, POOL at once, until none is left. */
async function backupClaimed(targets: AgentPaths[], counters: Int32Array, options: Omit<BackupOptions, 'now'>, stopped: () => boolean): Promise<Array<readonly [number, Outcome<BackupResult>]>> {
  const outcomes: Array<readonly [number, Outcome<BackupResult>]> = [];
  const tick = () => void Atomics.add(counters, 1, 1);
  const slot = async () => {
    for (let i = Atomics.add(counters, 0, 1); i < targets.length; i = Atomics.add(counters, 0, 1)) {
      try {
        outcomes.push([i, { ok: true, value: await backupOne(targets[i]!, options, stopped, tick) }]);
      } catch (error) {
        outcomes.push([i, { ok: false, error }]);
      }
    }
  };
  await Promise.all(Array.from({ length: POOL }, slot));
  return outcomes;
}

/** Entry of a backup worker thread (see backupMany). */
export async function runBackupWorker(): Promise<void> {
  const { parentPort, workerData } = await import('node:worker_threads');
  const job = (workerData as { animusBackupJob?: WorkerJob } | undefined)?.animusBackupJob;
  if (!job || !parentPort) return;
  const port = parentPort;
  let stopped = false;
  port.on('message', (message) => {
    if (message === 'stop') stopped = true;
  });
  const key = job.key ? { key: Buffer.from(job.key.key), params: job.key.params } : undefined;
  const outcomes = await backupClaimed(job.targets, new Int32Array(job.counters), { outDir: job.outDir, keep: job.keep, key }, () => stopped);
  port.removeAllListeners('message');
  port.postMessage({ result: outcomes.map(([i, outcome]) => [i, toWire(outcome)]) });
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
