import { workerData } from 'node:worker_threads';
import type { WorkerEntry } from '../core/worker.js';
import { BUNDLE, cacheKey, type CliBundle } from './launcher.js';
import { loadBundle } from './code-cache.js';

/**
 * dist/cli/worker.cjs, where a worker thread of the CLI starts (core/worker.ts): the same
 * bundle, from the main thread's cache (a worker shares its process.argv), never written
 * from here.
 */
const entry = (workerData as { animusWorkerEntry?: WorkerEntry } | undefined)?.animusWorkerEntry;
if (entry) void loadBundle<CliBundle>(BUNDLE, cacheKey(process.argv), process.env, { save: false }).exports.runWorkerEntry(entry);
