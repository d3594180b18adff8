import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { agentFileProblem, LstatMemo, readAgentText, statAgentPaths } from '../core/agent-fs.js';
import { DB_COMPANIONS, dbPathOf, type DbPathSetting } from '../instances/db-path.js';
import { INSPECTED_NAMES, inspectFolder } from '../instances/folder-safety.js';
import { join } from 'node:path';
import type { AgentId } from '../core/agent-id.js';
import { describeError } from '../core/errors.js';
import { formatMode } from '../core/fs.js';
import { isPlaceholder, parseEnv } from '../config/env-file.js';
import { envProblems } from '../config/env-problems.js';
import { parseSettingsJson, type MessageMode, type ProcessManagerName, type Settings } from '../config/settings.js';
import { agentPaths, locksDirOf, swapJournalOf, CLONE_DIR, ERR_LOG, OUT_LOG, SWAP_JOURNAL_SUFFIX, DB_FILE, ENV_FILE, LEGACY_CLONE_DIR, LOGS_DIR, SETTINGS_FILE, type AgentPaths } from '../home/layout.js';
import type { ProcessInfo } from '../process/types.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { ageProbe, probeDatabase } from './database-probe.js';
import { databaseKey, IDENTITY_WIDTH, isIdentity, isSettled, pushIdentity, recall, type AgentMemory, type FolderReading, type HealthCache, type Identity, type Remembered } from './check-cache.js';
import { cloneStateFrom, readCloneFiles, readIndex, readTracking } from '../git/clone-state.js';
import { readText } from '../git/refs.js';
import { FolderStats, statFile, WAL_FILE, type FileInfo } from './folder-stats.js';
import { checkTelegram } from './telegram-check.js';
import type { AgentHealth, CheckResult, HealthThresholds } from './types.js';

/** The checks that read the agent's folder; the process check is added once the managers answered. */
export interface FolderHealth {
  paths: AgentPaths;
  processManager: ProcessManagerName | undefined;
  health: AgentHealth;
  /** What was read afresh and may be remembered for next time (see check-cache). */
  memory?: AgentMemory;
}

export interface CheckContext {
  thresholds: HealthThresholds;
  now: number;
  /** What was read last time; absent: read everything and remember nothing. */
  cache?: HealthCache;
  /** Files changed after this (ms since epoch) are read but not remembered. */
  settledBefore: number;
  /** Commits read from local origin repos in this run. */
  origins?: Map<string, string | undefined>;
  /** The agents with a swap journal, from one listing of the locks folder (agentsWithSwapJournal); absent: each agent's is looked for. */
  swapJournals?: ReadonlySet<string>;
}

/**
 * The agents whose files a swap (restore) journals, by one listing of the home's locks
 * folder: a look per agent cost a syscall each, and a home made by hand has no such
 * folder. Undefined when the folder cannot be listed (each agent's journal is looked for).
 */
export function agentsWithSwapJournal(home: string): Set<string> | undefined {
  let names: string[];
  try {
    names = readdirSync(locksDirOf(home));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? new Set() : undefined;
  }
  return new Set(names.filter((name) => name.endsWith(SWAP_JOURNAL_SUFFIX)).map((name) => name.slice(0, -SWAP_JOURNAL_SUFFIX.length)));
}

/**
 * All of one agent's folder checks. File access is synchronous on purpose: these are
 * small files in the page cache, where a direct syscall costs a fraction of a
 * promise and a thread-pool round trip, and health runs thousands of them. Each file
 * is stat'ed once, before it is read, so that what is remembered is never older
 * than the identity it is remembered under.
 */
export async function checkAgentFolder(home: string, agent: AgentId, context: CheckContext): Promise<FolderHealth> {
  const { thresholds, now, cache, settledBefore } = context;
  const paths = agentPaths(home, agent);
  const stats = new FolderStats(paths.dir);
  const lstats = seedStats(paths, stats);
  const health: AgentHealth = {
    id: agent.id,
    dir: paths.dir,
    healthy: true,
    checks: [],
    facts: { mode: null, processManager: null, commit: null, dirty: null, behind: null, schemaVersion: null, logsBytes: null, processState: null, pid: null, queue: null, lastReplyAt: null },
  };
  const add = (check: CheckResult) => health.checks.push(check);

  const folder = checkFolder(paths, stats);
  add(folder);
  if (folder.status === 'fail' && folder.message.startsWith('missing')) return { paths, processManager: undefined, health };
  // The folder itself a link out of the home: nothing in it is read.
  const self = agentFileProblem(paths.dir, '.', 'dir', lstats);
  if (self) {
    add({ name: 'files', status: 'fail', message: self });
    return { paths, processManager: undefined, health };
  }

  const memory: AgentMemory = {};
  const remembered = cache && recall(cache, agent.id);
  let reading = remembered?.folder && hasIdentity(folderInputs(remembered.folder.value), stats, remembered.folder.key) ? remembered.folder.value : undefined;
  if (!reading) {
    reading = readFolder(paths, agent, stats);
    const inputs = folderInputs(reading);
    if (cache && inputs.every((input) => isSettled(stats.get(input), settledBefore))) memory.folder = { key: identityOf(inputs, stats), value: reading };
  }
  health.facts.mode = reading.settings.mode ?? null;
  health.facts.processManager = reading.settings.processManager ?? null;
  // Links where animus's files should be (never followed): looked at every run, never cached.
  // The database's place comes from the .env's DB_PATH as read above (remembered with the .env).
  const inspection = inspectFolder(paths, reading.dbPath, lstats);
  if (inspection.problems.length > 0) add({ name: 'files', status: 'fail', message: inspection.problems.join('; ') });
  // A restore killed half-way (its journal beside the lock): health only reads, so it says what finishes it.
  const journaled = context.swapJournals ? context.swapJournals.has(agent.id) : existsSync(swapJournalOf(paths));
  const interrupted = journaled ? await (await import('../instances/file-swap.js')).interruptedSwap(paths) : undefined;
  if (interrupted) add({ name: 'restore', status: 'fail', message: interrupted });

  const clone = await checkClone(paths, reading.clone, health, context.origins);
  const logs = checkLogs(paths, health, thresholds, stats, lstats, () => listLogs(paths, stats, remembered?.logs, settledBefore, memory));
  add(reading.env);
  add(reading.settings.check);
  // The database the runtime uses (instances/db-path); the cache knows only animus.db by its stats.
  const located = inspection.database;
  const dbPath = 'location' in located ? (located.location.rel === DB_FILE ? paths.db : located.location.path) : undefined;
  const dbProblem = 'problem' in located ? located.problem : undefined;
  const key = cache && dbPath === paths.db ? databaseKey(stats.get(DB_FILE), stats.get(WAL_FILE), settledBefore) : undefined;
  const cached = key !== undefined && remembered?.db?.key === key.key ? remembered.db.value : undefined;
  const db = cached ? ageProbe(cached, now) : dbPath ? probeDatabase(dbPath, now) : { problem: dbProblem };
  // Remembered only if the file did not move while it was read.
  if (!cached && key?.settled && db.problem === undefined && databaseKey(...statDatabase(paths.db), settledBefore)?.key === key.key) {
    memory.db = { key: key.key, value: db };
  }
  health.facts.schemaVersion = db.schemaVersion ?? null;
  health.facts.queue = db.queue ?? null;
  health.facts.lastReplyAt = db.lastReplyAt ?? null;
  add(db.problem ? { name: 'database', status: 'fail', message: `${db.problem}` } : { name: 'database', status: 'ok', message: 'opens, quick_check ok' });
  add(checkSchema(db.schemaVersion));
  add(clone);
  add(logs);
  add(checkQueue(db.problem === undefined ? db.queue : undefined, thresholds));
  add(checkReply(db.problem === undefined ? db.lastReplyAt : undefined, now));
  if (reading.settings.telegram) add(checkTelegram(paths.dir, reading.settings.telegram, now));
  return { paths, processManager: reading.settings.processManager, health, ...(Object.keys(memory).length > 0 ? { memory } : {}) };
}

/**
 * The folder's own names, lstat'ed once for the safety look (inspectFolder) and taken as
 * the stats the checks and the cache keys need: for anything but a link they are the same.
 */
function seedStats(paths: AgentPaths, stats: FolderStats): LstatMemo {
  const lstats = new LstatMemo();
  const names = [...INSPECTED_NAMES, DB_FILE, ...DB_COMPANIONS.map((suffix) => `${DB_FILE}${suffix}`)];
  let found;
  try {
    found = statAgentPaths(paths.dir, names, lstats);
  } catch {
    return lstats; // An unreadable folder: the checks stat (and report) it themselves.
  }
  found.forEach((file, i) => {
    if (file.via || file.kind === 'symlink') return;
    stats.seed(names[i] === '.' ? '' : names[i]!, file.stats);
  });
  return lstats;
}

function identityOf(inputs: readonly string[], stats: FolderStats): Identity {
  const key: Identity = [];
  for (const input of inputs) pushIdentity(key, stats.get(input));
  return key;
}

/** Whether `inputs` are the files `key` was taken from; stops at the first that moved. */
function hasIdentity(inputs: readonly string[], stats: FolderStats, key: Identity): boolean {
  if (!Array.isArray(key) || key.length !== inputs.length * IDENTITY_WIDTH) return false;
  for (let i = 0; i < inputs.length; i++) if (!isIdentity(key, i * IDENTITY_WIDTH, stats.get(inputs[i]!))) return false;
  return true;
}

/** settings.json, .env and the clone's .git files, each stat'ed (into `stats`) before it is read. */
function readFolder(paths: AgentPaths, agent: AgentId, stats: FolderStats): FolderReading {
  stats.get(SETTINGS_FILE);
  const { parsed, ...settings } = checkSettings(paths, agent);
  const { check: env, dbPath } = checkEnvFile(paths, agent, settings.mode, parsed, stats.get(ENV_FILE));
  const clone = readClone(paths, stats);
  return { settings, env, dbPath, ...(clone ? { clone } : {}) };
}

/** The clone folders looked for, in order: animus's own (paths.clone), then Broca's. */
const CLONE_CANDIDATES = [CLONE_DIR, LEGACY_CLONE_DIR] as const;

/** Besides HEAD, whose presence makes a folder a clone: what readCloneFiles reads. */
const GIT_FILES = ['config', 'index', 'packed-refs'];

/**
 * `<clone dir>/.git/<name>`, made once per name for the run: every agent asks for the
 * same few, and a string made once keeps its hash for the stats' map.
 */
function gitPath(dir: string, name: string): string {
  let names = gitPaths.get(dir);
  if (!names) gitPaths.set(dir, (names = new Map()));
  let path = names.get(name);
  if (path === undefined) {
    path = `${dir}/.git/${name}`;
    // Ref names come from the agents' own files: a few are kept, any others made each time.
    if (names.size < 64) names.set(name, path);
  }
  return path;
}

const gitPaths = new Map<string, Map<string, string>>();

/** The inputs of a reading without a clone, and of one with each clone folder and no refs. */
const NO_CLONE_INPUTS = [SETTINGS_FILE, ENV_FILE, ...CLONE_CANDIDATES.map((dir) => gitPath(dir, 'HEAD'))];

/** The files a reading came from (relative to the agent folder): the reading is remembered under their identity. */
function folderInputs(reading: FolderReading): readonly string[] {
  if (!reading.clone) return NO_CLONE_INPUTS;
  const inputs = [SETTINGS_FILE, ENV_FILE];
  for (const dir of CLONE_CANDIDATES) {
    inputs.push(gitPath(dir, 'HEAD'));
    if (reading.clone.dir !== dir) continue;
    for (const name of GIT_FILES) inputs.push(gitPath(dir, name));
    if (reading.clone.files.headRef) inputs.push(gitPath(dir, reading.clone.files.headRef));
    const tracking = reading.clone.files.upstream?.tracking;
    if (tracking) inputs.push(gitPath(dir, tracking.ref));
    break;
  }
  return inputs;
}

function readClone(paths: AgentPaths, stats: FolderStats): FolderReading['clone'] {
  for (const dir of CLONE_CANDIDATES) {
    const gitDir = `${dir}/.git`;
    if (!stats.get(gitPath(dir, 'HEAD'))) continue;
    for (const name of GIT_FILES) stats.get(gitPath(dir, name));
    const head = readText(join(paths.dir, gitDir, 'HEAD'));
    const headRef = /^ref: (.+)$/.exec(head?.trim() ?? '')?.[1];
    if (headRef) stats.get(gitPath(dir, headRef));
    const files = readCloneFiles(join(paths.dir, dir), head);
    // The remote-tracking ref is named in the config just read: stat'ed now, and read again after, so what is remembered is not older than its identity.
    const upstream = files.upstream;
    if (upstream?.tracking && upstream.merge) {
      stats.get(gitPath(dir, upstream.tracking.ref));
      upstream.tracking = readTracking(join(paths.dir, gitDir), upstream.remote, upstream.merge);
    }
    // A large index is read at each run instead: remembered, it would make the cache file huge.
    return files.index && files.index.length > MAX_REMEMBERED_INDEX ? { dir, files: { ...files, index: undefined }, indexTooLarge: true } : { dir, files };
  }
  return undefined;
}

const MAX_REMEMBERED_INDEX = 64;

function statDatabase(db: string): [FileInfo | undefined, FileInfo | undefined] {
  return [statFile(db), statFile(`${db}-wal`)];
}

function checkFolder(paths: AgentPaths, stats: FolderStats): CheckResult {
  const mode = modeOf(stats.get(''));
  if (mode === undefined) return { name: 'folder', status: 'fail', message: `missing: ${paths.dir} does not exist` };
  if (mode !== 0o700) return { name: 'folder', status: 'fail', message: `mode ${formatMode(mode)}, expected 0700: chmod 700 ${paths.dir}` };
  // Secrets and messages must not be readable by other users either.
  const loose: string[] = [];
  for (const file of [SETTINGS_FILE, DB_FILE]) {
    const fileBits = modeOf(stats.get(file));
    if (fileBits !== undefined && (fileBits & 0o077) !== 0) loose.push(`${file} ${formatMode(fileBits)}`);
  }
  if (loose.length > 0) return { name: 'folder', status: 'warn', message: `0700; readable by others: ${loose.join(', ')}: chmod 600 them` };
  return { name: 'folder', status: 'ok', message: '0700' };
}

function modeOf(info: FileInfo | undefined): number | undefined {
  return info ? info.mode & 0o777 : undefined;
}

function checkSettings(paths: AgentPaths, agent: AgentId): FolderReading['settings'] & { parsed?: Settings } {
  let text: string | undefined;
  try {
    text = readAgentText(paths.dir, SETTINGS_FILE);
  } catch (error) {
    return { check: { name: 'settings', status: 'fail', message: describeError(error) } };
  }
  if (text === undefined) return { check: { name: 'settings', status: 'fail', message: 'settings.json is missing: restore it from a backup or redeploy' } };
  let settings: Settings;
  try {
    settings = parseSettingsJson(text, 'settings.json');
  } catch (error) {
    return { check: { name: 'settings', status: 'fail', message: describeError(error) } };
  }
  const telegram = (['telegram_bot', 'telegram_user'] as const).filter((plugin) => settings.plugins[plugin].enabled);
  const found = { mode: settings.message_mode, processManager: settings.process_manager, parsed: settings, ...(telegram.length > 0 ? { telegram } : {}) };
  if (settings.agent.id !== agent.id) {
    return { ...found, check: { name: 'settings', status: 'fail', message: `agent.id is ${settings.agent.id}, not ${agent.id}: fix settings.json` } };
  }
  return { ...found, check: { name: 'settings', status: 'ok', message: `valid, mode ${settings.message_mode}, ${settings.process_manager}` } };
}

/** The env check, and the .env's DB_PATH as instances/db-path reads it (one read of the file for both). */
function checkEnvFile(paths: AgentPaths, agent: AgentId, mode: MessageMode | undefined, settings: Settings | undefined, info: FileInfo | undefined): { check: CheckResult; dbPath: DbPathSetting } {
  if (!info) return { check: { name: 'env', status: 'fail', message: '.env is missing: restore it from a backup or redeploy' }, dbPath: { value: undefined } };
  let text: string;
  try {
    text = readAgentText(paths.dir, ENV_FILE) ?? '';
  } catch (error) {
    return { check: { name: 'env', status: 'fail', message: describeError(error) }, dbPath: { problem: describeError(error) } };
  }
  return { check: judgeEnv(paths, agent, mode, settings, info, text), dbPath: { value: dbPathOf(text, paths.env) } };
}

function judgeEnv(paths: AgentPaths, agent: AgentId, mode: MessageMode | undefined, settings: Settings | undefined, info: FileInfo, text: string): CheckResult {
  const bits = info.mode & 0o777;
  if (bits !== 0o600) return { name: 'env', status: 'fail', message: `.env mode ${formatMode(bits)}, expected 0600: chmod 600 ${paths.env}` };
  let env;
  try {
    env = parseEnv(text, '.env');
  } catch (error) {
    return { name: 'env', status: 'fail', message: describeError(error) };
  }
  // What the runtime refuses to start on (the same function), and messages that name keys, never secret values.
  const problems = envProblems(env, mode ?? 'live', settings, agent.id).map((p) => (p.fix ? `${p.message} (${p.fix})` : p.message));
  if (env.AGENT_ID && env.AGENT_ID !== agent.id) problems.push(`AGENT_ID names another agent`);
  if (problems.length > 0) return { name: 'env', status: 'fail', message: `${problems.join('; ')}: fix .env (animus env set)` };
  const placeholders = Object.entries(env).filter(([key, value]) => value !== '' && isPlaceholder(value, key)).map(([key]) => key);
  if (placeholders.length > 0) return { name: 'env', status: 'warn', message: `placeholder values in ${placeholders.join(', ')}` };
  return { name: 'env', status: 'ok', message: `0600, ${Object.keys(env).length} keys` };
}

function checkSchema(version: number | undefined): CheckResult {
  if (version === undefined) return { name: 'schema', status: 'unknown', message: 'database not readable' };
  if (version === SCHEMA_VERSION) return { name: 'schema', status: 'ok', message: `version ${version}` };
  if (version > SCHEMA_VERSION) return { name: 'schema', status: 'warn', message: `version ${version}, newer than this animus (${SCHEMA_VERSION}): it works (every step only adds); upgrade animus` };
  return { name: 'schema', status: 'warn', message: `version ${version}, current ${SCHEMA_VERSION}: migrated at the next start` };
}

async function checkClone(paths: AgentPaths, found: FolderReading['clone'], health: AgentHealth, origins?: Map<string, string | undefined>): Promise<CheckResult> {
  if (!found) return { name: 'clone', status: 'fail', message: `no runtime clone (${CLONE_DIR}/ or ${LEGACY_CLONE_DIR}/): redeploy or restore with --code` };
  const clone = found.dir === CLONE_DIR ? paths.clone : join(paths.dir, found.dir);
  const files = found.indexTooLarge ? { ...found.files, index: readIndex(clone) } : found.files;
  const state = await cloneStateFrom(clone, files, origins);
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

function checkLogs(paths: AgentPaths, health: AgentHealth, thresholds: HealthThresholds, stats: FolderStats, lstats: LstatMemo, files: () => string[]): CheckResult {
  if (agentFileProblem(paths.dir, LOGS_DIR, 'dir', lstats)) return { name: 'logs', status: 'fail', message: 'logs/ is a symbolic link or not a folder: animus never writes through it; replace it with a real folder' };
  try {
    accessSync(paths.logs, constants.W_OK);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    return { name: 'logs', status: 'fail', message: missing ? `logs/ is missing: mkdir -m 700 ${paths.logs}` : `logs/ is not writable: check its owner and mode` };
  }
  let bytes = 0;
  for (const file of files()) bytes += stats.get(`${LOGS_DIR}/${file}`)?.size ?? 0;
  health.facts.logsBytes = bytes;
  const unbounded = unboundedLog(paths, stats);
  if (unbounded) return { name: 'logs', status: 'warn', message: unbounded };
  if (bytes > thresholds.maxLogsBytes) return { name: 'logs', status: 'warn', message: `writable, ${formatBytes(bytes)}: rotate or prune old logs` };
  return { name: 'logs', status: 'ok', message: `writable, ${formatBytes(bytes)}` };
}

/**
 * A log that rotation is not keeping under log_max_mb: runtime.log grows past it only when
 * something else writes it (an old PM2 out_file, a runtime older than rotation), and
 * runtime.err.log is trimmed only at start. settings.json is read only for a log over 1 MiB,
 * so a healthy fleet costs two stats per agent.
 */
function unboundedLog(paths: AgentPaths, stats: FolderStats): string | undefined {
  const sizes = [OUT_LOG, ERR_LOG].map((name) => [name, stats.get(name)?.size ?? 0] as const);
  if (sizes.every(([, size]) => size <= 1024 * 1024)) return undefined;
  let limitMb = 10;
  try {
    const parsed = JSON.parse(readAgentText(paths.dir, SETTINGS_FILE) ?? '{}') as { log_max_mb?: unknown };
    if (typeof parsed.log_max_mb === 'number' && parsed.log_max_mb > 0) limitMb = parsed.log_max_mb;
  } catch {
    // The settings check reports a bad settings.json; the default limit is used here.
  }
  // Some slack: the runtime rotates before the line that would pass the limit, PM2 appends to the err log until the next start.
  const over = sizes.find(([, size]) => size > limitMb * 1024 * 1024 * 1.5 + 64 * 1024);
  if (!over) return undefined;
  const name = over[0];
  return `${name} is ${formatBytes(over[1])}, above log_max_mb ${limitMb}: rotation is not keeping it under its limit (${name.endsWith('err.log') ? 'it is trimmed at each start: restart the agent and look at why it writes so much to stderr' : 'is an old PM2 process or an old runtime writing it? animus restart the agent'})`;
}

/**
 * The files in logs/, from memory while the folder's own times say no entry was
 * added, removed or renamed (their sizes are read at every run). Listing a folder
 * costs four syscalls where its stat costs one. Only a flat folder is remembered.
 */
function listLogs(paths: AgentPaths, stats: FolderStats, remembered: Remembered<string[]> | undefined, settledBefore: number, memory: AgentMemory): string[] {
  const info = stats.get(LOGS_DIR);
  const key = info?.directory ? `${info.ino}:${info.mtimeMs}:${info.ctimeMs}` : undefined;
  if (key !== undefined && remembered?.key === key) return remembered.value;
  const files: string[] = [];
  const flat = walkFiles(paths.logs, '', files);
  if (key !== undefined && flat && info!.ctimeMs < settledBefore && info!.mtimeMs < settledBefore) memory.logs = { key, value: files };
  return files;
}

/** Appends the files under `dir` (relative to the first dir); false when it had subfolders. */
function walkFiles(dir: string, prefix: string, files: string[]): boolean {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  let flat = true;
  for (const entry of entries) {
    if (entry.isDirectory()) {
      flat = false;
      walkFiles(join(dir, entry.name), `${prefix}${entry.name}/`, files);
    } else if (entry.isFile()) files.push(`${prefix}${entry.name}`);
  }
  return flat;
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
