import { Worker } from 'node:worker_threads';

/**
 * Runs the export `entry` of the bundled module at `moduleUrl` in a worker thread with
 * `data` as its workerData, and resolves with what it posts as `{ result }`. The worker
 * may post `{ progress: true }` along the way; on abort it receives the message 'stop'.
 * Health and backup split large homes across cores with this.
 */
export function runInWorker<R>(moduleUrl: string, entry: string, data: unknown, options: { onProgress?: () => void; signal?: AbortSignal } = {}): Promise<R> {
  return new Promise((resolve, reject) => {
    const code = `import(${JSON.stringify(moduleUrl)}).then((m) => m[${JSON.stringify(entry)}]())`;
    const worker = new Worker(code, { eval: true, workerData: data });
    const stop = () => worker.postMessage('stop');
    options.signal?.addEventListener('abort', stop, { once: true });
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
