import type { WorkerEntry } from '../core/worker.js';

/**
 * Starts what a worker thread was made for (core/worker.ts runInWorker). The launcher
 * calls this in the new thread; each module is loaded only in the threads that run it.
 */
export async function runWorkerEntry(entry: WorkerEntry): Promise<void> {
  switch (entry) {
    case 'health':
      return (await import('../health/run-health.js')).runHealthWorker();
    case 'backup':
      return (await import('../backup/backup-many.js')).runBackupWorker();
    case 'metrics':
      return (await import('../metrics/collect.js')).readDigestsWorker();
  }
}
