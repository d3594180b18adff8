import type { AgentPaths } from '../home/layout.js';
import { ConfigError, loadRuntimeConfig } from '../runtime/config.js';
import { instanceEnv } from './process-env.js';

/**
 * What the runtime will refuse at start, checked before a start or restart touches
 * the running instance: the runtime's own configuration check (runtime/config.ts),
 * run on the agent folder with the environment its process manager will hand it.
 * An empty list means it would start; a restart that would fail leaves the instance
 * running instead of stopping it first.
 */
export function preflightProblems(paths: AgentPaths, callerEnv: NodeJS.ProcessEnv): string[] {
  try {
    loadRuntimeConfig(instanceEnv(paths, callerEnv), paths.dir);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    return [error instanceof Error ? error.message : String(error)];
  }
}
