import { accessSync, constants, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentId } from '../core/agent-id.js';
import { describeError } from '../core/errors.js';
import { formatMode } from '../core/fs.js';
import { checkEnv, isPlaceholder, parseEnv } from '../config/env-file.js';
import { parseSettingsJson, type Settings } from '../config/settings.js';
import { agentPaths, LEGACY_CLONE_DIR, type AgentPaths } from '../home/layout.js';
import type { ProcessInfo } from '../process/types.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { ageProbe, probeDatabase } from './database-probe.js';
import { databaseKey, type CachedProbe, type ProbeCache } from './probe-cache.js';
import { readCloneState } from '../git/clone-state.js';
import type { AgentHealth, CheckResult, HealthThresholds } from './types.js';

/** The checks that read the agent's folder; the process check is added once the managers answered. */
export interface FolderHealth {
  paths: AgentPaths;
  settings: Settings | undefined;
  health: AgentHealth;
  /** A fresh probe to remember for next time (absent when the cached one was used or it failed). */
  probe?: CachedProbe;
}

/**
 * All of one agent's folder checks. File access is synchronous on purpose: these are
 * small files in the page cache, where a direct syscall costs a fraction of a
 * promise and a thread-pool round trip, and health runs thousands of them.
 */
export interface CheckContext {
  thresholds: HealthThresholds;
  now: number;
  /** Probes of unchanged databases from the last run. */
  cache?: ProbeCache;
  /** Database keys the caller already took, by agent id. */
  keys?: Record<string, string | undefined>;
  /** Commits read from local origin repos in this run. */
  origins?: Map<string, string | undefined>;
}

export async function checkAgentFolder(home: string, agent: AgentId, context: CheckContext): Promise<FolderHealth> {
  const { thresholds, now, cache } = context;
  const paths = agentPaths(home, agent);
  const health: AgentHealth = {
    id: agent.id,
    dir: paths.dir,
    healthy: true,
    checks: [],
    facts: { mode: null, processManager: null, commit: null, dirty: null, behind: null, schemaVersion: null, logsBytes: null, processState: null, pid: null, queue: null, lastReplyAt: null },
  };
  const add = (check: CheckResult) => health.checks.push(check);

  const folder = checkFolder(paths);
  add(folder);
  if (folder.status === 'fail' && folder.message.startsWith('missing')) return { paths, settings: undefined, health };

  const settingsResult = checkSettings(paths, agent);
  const settings = settingsResult.settings;
  health.facts.mode = settings?.message_mode ?? null;
  health.facts.processManager = settings?.process_manager ?? null;

  const env = checkEnvFile(paths, agent, settings);
  const clone = await checkClone(paths, health, context.origins);
  const logs = checkLogs(paths, health, thresholds);
  add(env);
  add(settingsResult.check);
  const key = cache ? (context.keys && agent.id in context.keys ? context.keys[agent.id] : databaseKey(paths.db)) : undefined;
  const cached = key !== undefined && cache?.[agent.id]?.key === key ? cache[agent.id]!.probe : undefined;
  const db = cached ? ageProbe(cached, now) : probeDatabase(paths.db, now);
  const probe = !cached && key !== undefined && db.problem === undefined && databaseKey(paths.db) === key ? { key, probe: db } : undefined;
  health.facts.schemaVersion = db.schemaVersion ?? null;
  health.facts.queue = db.queue ?? null;
  health.facts.lastReplyAt = db.lastReplyAt ?? null;
  add(db.problem ? { name: 'database', status: 'fail', message: `${db.problem}` } : { name: 'database', status: 'ok', message: 'opens, quick_check ok' });
  add(checkSchema(db.schemaVersion));
  add(clone);
  add(logs);
  add(checkQueue(db.problem === undefined ? db.queue : undefined, thresholds));
  add(checkReply(db.problem === undefined ? db.lastReplyAt : undefined, now));
  return { paths, settings, health, ...(probe ? { probe } : {}) };
}

function fileMode(path: string): number | undefined {
  const info = statSync(path, { throwIfNoEntry: false });
  return info ? info.mode & 0o777 : undefined;
}

function checkFolder(paths: AgentPaths): CheckResult {
  const mode = fileMode(paths.dir);
  if (mode === undefined) return { name: 'folder', status: 'fail', message: `missing: ${paths.dir} does not exist` };
  if (mode !== 0o700) return { name: 'folder', status: 'fail', message: `mode ${formatMode(mode)}, expected 0700: chmod 700 ${paths.dir}` };
  // Secrets and messages must not be readable by other users either.
  const loose: string[] = [];
  for (const file of [paths.settings, paths.db]) {
    const fileBits = fileMode(file);
    if (fileBits !== undefined && (fileBits & 0o077) !== 0) loose.push(`${file.slice(paths.dir.length + 1)} ${formatMode(fileBits)}`);
  }
  if (loose.length > 0) return { name: 'folder', status: 'warn', message: `0700; readable by others: ${loose.join(', ')}: chmod 600 them` };
  return { name: 'folder', status: 'ok', message: '0700' };
}

function checkSettings(paths: AgentPaths, agent: AgentId): { settings?: Settings; check: CheckResult } {
  let text: string;
  try {
    text = readFileSync(paths.settings, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { check: { name: 'settings', status: 'fail', message: missing ? 'settings.json is missing: restore it from a backup or redeploy' : describeError(error) } };
  }
  try {
    const settings = parseSettingsJson(text, 'settings.json');
    if (settings.agent.id !== agent.id) {
      return { settings, check: { name: 'settings', status: 'fail', message: `agent.id is ${settings.agent.id}, not ${agent.id}: fix settings.json` } };
    }
    return { settings, check: { name: 'settings', status: 'ok', message: `valid, mode ${settings.message_mode}, ${settings.process_manager}` } };
  } catch (error) {
    return { check: { name: 'settings', status: 'fail', message: describeError(error) } };
  }
}

function checkEnvFile(paths: AgentPaths, agent: AgentId, settings: Settings | undefined): CheckResult {
  let text: string;
  try {
    text = readFileSync(paths.env, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { name: 'env', status: 'fail', message: missing ? '.env is missing: restore it from a backup or redeploy' : describeError(error) };
  }
  const mode = fileMode(paths.env);
  if (mode !== undefined && mode !== 0o600) return { name: 'env', status: 'fail', message: `.env mode ${formatMode(mode)}, expected 0600: chmod 600 ${paths.env}` };
  let env;
  try {
    env = parseEnv(text, '.env');
  } catch (error) {
    return { name: 'env', status: 'fail', message: describeError(error) };
  }
  // Messages name keys only, never values: this output ends up in logs and tickets.
  const problems = checkEnv(env, settings?.message_mode ?? 'live').map((p) => `${p.key} ${p.problem}`);
  if (env.AGENT_ID && env.AGENT_ID !== agent.id) problems.push(`AGENT_ID names another agent`);
  if (problems.length > 0) return { name: 'env', status: 'fail', message: `${problems.join('; ')}: fix .env (animus env set)` };
  const placeholders = Object.entries(env).filter(([, value]) => value !== '' && isPlaceholder(value)).map(([key]) => key);
  if (placeholders.length > 0) return { name: 'env', status: 'warn', message: `placeholder values in ${placeholders.join(', ')}` };
  return { name: 'env', status: 'ok', message: `0600, ${Object.keys(env).length} keys` };
}

function checkSchema(version: number | undefined): CheckResult {
  if (version === undefined) return { name: 'schema', status: 'unknown', message: 'database not readable' };
  if (version === SCHEMA_VERSION) return { name: 'schema', status: 'ok', message: `version ${version}` };
  if (version > SCHEMA_VERSION) return { name: 'schema', status: 'fail', message: `version ${version} is newer than this animus (${SCHEMA_VERSION}): upgrade animus` };
  return { name: 'schema', status: 'warn', message: `version ${version}, current ${SCHEMA_VERSION}: migrated at the next start` };
}

async function checkClone(paths: AgentPaths, health: AgentHealth, origins?: Map<string, string | undefined>): Promise<CheckResult> {
  const clone = [paths.clone, join(paths.dir, LEGACY_CLONE_DIR)].find((dir) => statSync(join(dir, '.git'), { throwIfNoEntry: false }));
  if (!clone) return { name: 'clone', status: 'fail', message: 'no runtime clone (runtime/ or broca/): redeploy or restore with --code' };
  const state = await readCloneState(clone, origins);
  health.facts.commit = state.commit ?? null;
  health.facts.dirty = state.dirtyFiles.length > 0;
  health.facts.behind = state.behind ?? null;
  if (!state.commit) return { name: 'clone', status: 'fail', message: `${clone} has no readable HEAD commit` };
  const short = state.commit.slice(0, 12);
  const notes: string[] = [];
  if (state.dirtyFiles.length > 0) {
    const shown = state.dirtyFiles.slice(0, 3).join(', ') + (state.dirtyFiles.length > 3 ? ', …' : '');
    notes.push(`${state.dirtyFiles.length} modified file(s): ${shown}`);
  }
  if (state.behind === -1) notes.push('origin has a newer commit');
  else if (state.behind) notes.push(`${state.behind} commit(s) behind origin`);
  if (notes.length > 0) return { name: 'clone', status: 'warn', message: `${short}; ${notes.join('; ')}` };
  return { name: 'clone', status: 'ok', message: `${short}${state.behind === 0 ? ', up to date' : ''}` };
}

function checkLogs(paths: AgentPaths, health: AgentHealth, thresholds: HealthThresholds): CheckResult {
  try {
    accessSync(paths.logs, constants.W_OK);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { name: 'logs', status: 'fail', message: missing ? `logs/ is missing: mkdir -m 700 ${paths.logs}` : `logs/ is not writable: check its owner and mode` };
  }
  const bytes = folderSize(paths.logs);
  health.facts.logsBytes = bytes;
  if (bytes > thresholds.maxLogsBytes) return { name: 'logs', status: 'warn', message: `writable, ${formatBytes(bytes)}: rotate or prune old logs` };
  return { name: 'logs', status: 'ok', message: `writable, ${formatBytes(bytes)}` };
}

function folderSize(dir: string): number {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += folderSize(path);
    else if (entry.isFile()) total += statSync(path, { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}

function checkQueue(queue: AgentHealth['facts']['queue'] | undefined, thresholds: HealthThresholds): CheckResult {
  if (!queue) return { name: 'queue', status: 'unknown', message: 'database not readable' };
  const summary = `${queue.pending} pending${queue.oldestPendingAgeS !== null ? ` (oldest ${formatAge(queue.oldestPendingAgeS)})` : ''}, ${queue.processing} processing, ${queue.failed} failed`;
  if (queue.oldestPendingAgeS !== null && queue.oldestPendingAgeS > thresholds.maxPendingAgeS) {
    return { name: 'queue', status: 'fail', message: `${summary}: the queue is not draining; check the process and its log` };
  }
  if (queue.failed > 0) return { name: 'queue', status: 'warn', message: `${summary}: see animus queue list --status failed` };
  return { name: 'queue', status: 'ok', message: summary };
}

function checkReply(lastReplyAt: string | null | undefined, now: number): CheckResult {
  if (lastReplyAt === undefined) return { name: 'reply', status: 'unknown', message: 'database not readable' };
  if (lastReplyAt === null) return { name: 'reply', status: 'unknown', message: 'no reply yet' };
  const ms = Date.parse(lastReplyAt);
  return { name: 'reply', status: 'ok', message: Number.isNaN(ms) ? `last reply ${lastReplyAt}` : `last reply ${formatAge(Math.round((now - ms) / 1000))} ago` };
}

export function checkProcess(info: ProcessInfo | undefined, managerMessage: string | undefined): CheckResult {
  if (!info || info.state === 'unknown') return { name: 'process', status: 'unknown', message: managerMessage ?? 'state unknown' };
  const detail = [info.pid ? `pid ${info.pid}` : '', info.uptimeMs !== undefined ? `up ${formatAge(Math.round(info.uptimeMs / 1000))}` : '', info.restarts ? `${info.restarts} restarts` : ''].filter(Boolean).join(', ');
  switch (info.state) {
    case 'online':
      return { name: 'process', status: 'ok', message: `online${detail ? ` (${detail})` : ''} under ${info.manager}` };
    case 'starting':
    case 'stopping':
      return { name: 'process', status: 'warn', message: `${info.state} under ${info.manager}` };
    case 'not-registered':
      return { name: 'process', status: 'fail', message: `not registered with ${info.manager}: animus start ${info.id}` };
    default:
      return { name: 'process', status: 'fail', message: `${info.state} under ${info.manager}: animus start ${info.id}, and see animus logs ${info.id}` };
  }
}

export function formatAge(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86400)}d${Math.floor((seconds % 86400) / 3600)}h`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
