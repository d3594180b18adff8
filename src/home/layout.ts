import { homedir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { resolvedPath } from '../core/resolved-path.js';
import type { AgentId } from '../core/agent-id.js';

/**
 * Where everything lives. The home's folders are the registry of agents: an agent is
 * a folder `agent-<uuid>` directly in the home, nothing else records it.
 *
 *   <home>/
 *     node_modules/          shared runtime: the packages every instance's code resolves
 *     .animus/runtime.git    local source of the runtime that agents clone by default
 *     .animus/staging/       deploys being assembled (renamed into place when complete)
 *     .trash/                removed agents, by date
 *     backups/               backup archives
 *     agent-<uuid>/          one agent (see AgentPaths)
 */
export interface HomeLayout {
  root: string;
  sharedModules: string;
  stateDir: string;
  runtimeRepo: string;
  stagingDir: string;
  trashDir: string;
  backupsDir: string;
}

export function homeLayout(root: string): HomeLayout {
  const abs = resolve(root);
  const stateDir = join(abs, '.animus');
  return {
    root: abs,
    sharedModules: join(abs, 'node_modules'),
    stateDir,
    runtimeRepo: join(stateDir, 'runtime.git'),
    stagingDir: join(stateDir, 'staging'),
    trashDir: join(abs, '.trash'),
    backupsDir: join(abs, 'backups'),
  };
}

export const DEFAULT_HOME = join(homedir(), 'animus');

/** The clone folder of an agent deployed by animus; adopted Broca folders keep `broca/`. */
export const CLONE_DIR = 'runtime';
export const LEGACY_CLONE_DIR = 'broca';
export const DB_FILE = 'animus.db';
export const ENV_FILE = '.env';
export const SETTINGS_FILE = 'settings.json';
export const LOGS_DIR = 'logs';
export const LEGACY_DB_FILE = 'sanctum.db';
/** The instance's stdout and stderr (AgentPaths' outLog and errLog), relative to its folder. */
export const OUT_LOG = `${LOGS_DIR}/runtime.log`;
export const ERR_LOG = `${LOGS_DIR}/runtime.err.log`;

export interface AgentPaths {
  agent: AgentId;
  dir: string;
  clone: string;
  env: string;
  settings: string;
  db: string;
  logs: string;
  /** Update history and the database snapshots taken before updates (src/update). */
  updates: string;
  /** stdout and stderr of the instance (PM2 writes them here; systemd when log_target is file). */
  outLog: string;
  errLog: string;
}

export function agentPaths(home: string, agent: AgentId): AgentPaths {
  // An agent id is one plain name: below the resolved home, joining is concatenating.
  const root = resolvedPath(home);
  return pathsIn(`${root === sep ? '' : root}${sep}${agent.id}`, agent);
}

/** The agent's operation lock (instances/operation-lock.ts): in the home's state folder, never the agent's. */
export function lockFileOf(paths: AgentPaths): string {
  // Agent folders sit directly in the home (registry.ts).
  return join(locksDirOf(dirname(paths.dir)), `${paths.agent.id}.lock`);
}

/** The folder of the agents' locks and swap journals. */
export function locksDirOf(home: string): string {
  return join(home, '.animus', 'locks');
}

/** A swap journal's name in locksDirOf: `<agent id>` and this. */
export const SWAP_JOURNAL_SUFFIX = '.swap.json';

/** Where a swap of the agent's files keeps its journal (instances/file-swap.ts), beside the lock. */
export function swapJournalOf(paths: AgentPaths): string {
  return join(dirname(lockFileOf(paths)), `${paths.agent.id}${SWAP_JOURNAL_SUFFIX}`);
}

/** Paths of an agent whose folder is somewhere else (staging, restore). */
export function agentPathsIn(folder: string, agent: AgentId): AgentPaths {
  // One join normalizes the folder; the rest are plain concatenations of fixed names.
  return pathsIn(join(folder).replace(/(?<=.)\/+$/, ''), agent);
}

/** The paths below a normal folder path. */
function pathsIn(dir: string, agent: AgentId): AgentPaths {
  const logs = `${dir}${sep}${LOGS_DIR}`;
  return {
    agent,
    dir,
    clone: `${dir}${sep}${CLONE_DIR}`,
    env: `${dir}${sep}${ENV_FILE}`,
    settings: `${dir}${sep}${SETTINGS_FILE}`,
    db: `${dir}${sep}${DB_FILE}`,
    logs,
    updates: `${dir}${sep}updates`,
    outLog: `${dir}${sep}${OUT_LOG}`,
    errLog: `${dir}${sep}${ERR_LOG}`,
  };
}

/**
 * The rotated files of a log (newest first) as the runtime's writer names them:
 * `<log>.1` (left by a crash mid-compression; the same lines as a `.1.gz` beside it),
 * then `<log>.1.gz` … `<log>.<keep>.gz`.
 */
export function rotatedNames(name: string, keep: number): string[] {
  return [`${name}.1`, ...Array.from({ length: keep }, (_, i) => `${name}.${i + 1}.gz`)];
}
