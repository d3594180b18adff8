import { dirname, join } from 'node:path';

declare const __ANIMUS_BUNDLE_FILE__: string;

/**
 * The built CLI's file (dist/cli/main.cjs): esbuild defines the name as the bundle's
 * `__filename`. Undefined under the TypeScript sources (the tests), which a worker
 * thread cannot load: there the work that would be split stays on one thread.
 */
const BUNDLE_FILE: string | undefined = typeof __ANIMUS_BUNDLE_FILE__ === 'string' ? __ANIMUS_BUNDLE_FILE__ : undefined;

/** Whether work can be split across worker threads here (the built CLI only). */
export const WORKERS_AVAILABLE = BUNDLE_FILE !== undefined;

/** What a worker thread can be started for; src/cli/worker-entries.ts starts each. */
export type WorkerEntry = 'health' | 'backup' | 'metrics';

/**
 * Runs `entry` in a worker thread with `data` as its workerData, and resolves with what
 * it posts as `{ result }`. The thread starts from dist/cli/worker.cjs, which loads the
 * bundle as the main thread's launcher did (with its code cache). The worker may post
 * `{ progress: true }` along the way; on abort it receives the message 'stop'.
 * Health, metrics and backup split large homes across cores with this.
 */
export async function runInWorker<R>(entry: WorkerEntry, data: Record<string, unknown>, options: { onProgress?: () => void; signal?: AbortSignal } = {}): Promise<R> {
  if (!BUNDLE_FILE) throw new Error(`the ${entry} worker needs the built CLI (npm run build)`);
  const file = join(dirname(BUNDLE_FILE), 'worker.cjs');
  // Loaded on use: a command that starts no thread does not pay for the module.
  const { Worker } = await import('node:worker_threads');
  return new Promise((resolve, reject) => {
    const worker = new Worker(file, { workerData: { ...data, animusWorkerEntry: entry } });
    const stop = () => worker.postMessage('stop');
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop, { once: true });
    worker.on('message', (message: { progress?: true; result?: R }) => {
      if (message.progress) return options.onProgress?.();
      resolve(message.result as R);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (exit) => {
      options.signal?.removeEventListener('abort', stop);
      if (exit !== 0) reject(new Error(`${entry} worker exited with code ${exit}`));
    });
  });
}
