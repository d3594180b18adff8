import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureAgentDir } from '../core/agent-fs.js';
import { parseAgentId } from '../core/agent-id.js';
import { AnimusError, describeError } from '../core/errors.js';
import { isDirectory, pathExists } from '../core/fs.js';
import { parseEnv } from '../config/env-file.js';
import { agentDbPath, resolveDbLocation } from '../instances/db-path.js';
import { isSameRepoPath } from '../update/git-ops.js';
import { parseSettingsJson, type Settings } from '../config/settings.js';
import { gitError } from '../git/repo.js';
import { runGit } from '../git/run.js';
import { findModifiedFiles } from '../git/clone-state.js';
import { readCloneCommit } from '../git/refs.js';
import { agentPaths, homeLayout, LOGS_DIR, type AgentPaths } from '../home/layout.js';
import { deployAgent } from '../instances/deploy.js';
import { swapAgentFiles, type FileMove } from '../instances/file-swap.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { cloneDir } from '../instances/registry.js';
import { ARCHIVED_FILES, AUDIT_ENTRY, printable, type ArchivedFile, type Manifest } from './archive-format.js';
import { readManifest } from './read-archive.js';
import { makeWorkDir, proveArchive } from './verify-backup.js';

/** Stopping and starting the instance around a restore; supplied by the command from the process managers. */
export interface ProcessControl {
  /** Stops the agent; `unavailable` when no process manager can be asked. Throws when it cannot be stopped. */
  stop(paths: AgentPaths, settings: Settings | undefined): Promise<{ wasRunning: boolean } | { unavailable: string }>;
  start(paths: AgentPaths, settings: Settings | undefined): Promise<{ ok: true } | { ok: false; message: string } | { unavailable: string }>;
}

export interface RestoreOptions {
  home: string;
  id: string;
  archive: string;
  passphrase?: string;
  /** Also check out the clone's recorded commit. */
  code?: boolean;
  /** Start the instance afterwards: true always, false never, undefined when it was running before. */
  start?: boolean;
  process?: ProcessControl;
  /** Repositories a recreated clone may come from: the configured `runtimeRepo` (the home's own is always trusted). */
  trustedOrigins?: string[];
  /** --trust-origin: clone a recreated agent from whatever origin the archive records. */
  trustOrigin?: boolean;
  now?: () => Date;
  onStep?: (step: string) => void;
}

export interface RestoreResult {
  id: string;
  archive: string;
  createdAt: string;
  recreated: boolean;
  restored: ArchivedFile[];
  /** The files the restore replaced, kept beside them. */
  preRestore: string[];
  commit: { recorded: string | null; checkedOut: boolean };
  /** Where a recreated agent's runtime was cloned from; null when the agent existed. */
  origin: string | null;
  process: { stopped: 'stopped' | 'was-not-running' | 'unavailable' | 'not-applicable'; started: 'started' | 'failed' | 'skipped' | 'unavailable' };
  notes: string[];
}

/**
 * Restores an agent from an archive. Everything is proven before anything is
 * touched (archive of this agent, checksums or GCM tag, passphrase, integrity_check,
 * settings and .env, and for --code a clean clone that has the commit); then the
 * instance is stopped, the current files are kept beside as `*.pre-restore-<stamp>`,
 * the archive's files are renamed into place, and the instance is started again.
 * A missing agent is recreated by a deploy first.
 */
export async function restoreAgent(options: RestoreOptions): Promise<RestoreResult> {
  const step = options.onStep ?? (() => {});
  const agent = parseAgentId(options.id);
  const { manifest: head } = await readManifest(options.archive);
  if (head.agentId !== agent.id) {
    throw new AnimusError('EBADARCHIVE', `${options.archive} is a backup of ${head.agentId}, not ${agent.id}: nothing was changed; pass an archive of ${agent.id} (animus backup list ${agent.id})`);
  }
  // Staging debris of killed restores and verifies (dead pids) goes first.
  const work = await makeWorkDir(options.home, `restore-${agent.uuid}`);
  try {
    step('verifying the archive');
    const { manifest, files, notes } = await proveArchive(options.archive, work, options.passphrase);
    // A settings.json animus cannot read yet (proveArchive noted it) is restored as it is; the agent's own defaults drive a recreation.
    const archivedSettings = files['settings.json'] ? await readFile(files['settings.json'], 'utf8').then((text) => parseSettingsJson(text, 'settings.json')).catch(() => undefined) : undefined;
    const paths = agentPaths(options.home, agent);
    const exists = await isDirectory(paths.dir);
    if (options.code && exists) await assertCommitAvailable(paths, manifest);

    const result: RestoreResult = {
      id: agent.id,
      archive: options.archive,
      createdAt: manifest.createdAt,
      recreated: !exists,
      restored: [],
      preRestore: [],
      commit: { recorded: manifest.clone.commit, checkedOut: false },
      origin: null,
      process: { stopped: 'not-applicable', started: 'skipped' },
      notes,
    };

    // Another operation on this agent meanwhile (an update restarting it on the old
    // files, a backup reading the database being swapped) waits or says it is busy.
    await withAgentLock(paths, { command: 'restore' }, () => applyRestore({ options, manifest, files, archivedSettings, paths, exists, result, step }));
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface ApplyInput {
  options: RestoreOptions;
  manifest: Manifest;
  files: Partial<Record<ArchivedFile, string>>;
  archivedSettings: Settings | undefined;
  paths: AgentPaths;
  exists: boolean;
  result: RestoreResult;
  step: (step: string) => void;
}

/** The part that changes things, once the archive is proven: stop, swap, check out, start. */
async function applyRestore({ options, manifest, files, archivedSettings, paths, exists, result, step }: ApplyInput): Promise<void> {
  const { notes } = result;
  if (exists) {
    step('stopping the instance');
    const current = await readCurrentSettings(paths);
    const stopped = options.process ? await options.process.stop(paths, current) : { unavailable: 'no process manager support' };
    if ('unavailable' in stopped) {
      result.process.stopped = 'unavailable';
      notes.push(`the instance was not stopped (${stopped.unavailable}): make sure it is not running`);
    } else result.process.stopped = stopped.wasRunning ? 'stopped' : 'was-not-running';
  } else {
    step('recreating the agent folder');
    paths = await recreate(options, manifest, archivedSettings, result);
  }

  step('restoring files');
  const stamp = (options.now ?? (() => new Date()))().toISOString().replace(/[-:.]/g, '');
  await swapFiles(paths, files, stamp, exists, result);

  if (options.code && manifest.clone.commit) {
    step(`checking out ${manifest.clone.commit.slice(0, 12)}`);
    const clone = await cloneDir(paths);
    if (clone) {
      await runGit(['checkout', '--quiet', manifest.clone.commit!], { cwd: clone }).catch((error: unknown) => {
        throw gitError(`restored the data, but cannot check out ${manifest.clone.commit}`, error, 'check out the commit by hand in the clone');
      });
      result.commit.checkedOut = true;
    }
  } else if (!exists && manifest.clone.commit) {
    // A recreated clone is at the recorded commit unless its origin was gone (see recreate).
    const clone = await cloneDir(paths);
    result.commit.checkedOut = clone !== undefined && readCloneCommit(clone) === manifest.clone.commit;
  }

  const start = options.start ?? result.process.stopped === 'stopped';
  if (!start) return;
  step('starting the instance');
  const started = options.process ? await options.process.start(paths, archivedSettings) : { unavailable: 'no process manager support' };
  if ('unavailable' in started) {
    result.process.started = 'unavailable';
    notes.push(`the instance was not started (${started.unavailable}): start it with \`animus start ${result.id}\``);
  } else if (started.ok) result.process.started = 'started';
  else {
    result.process.started = 'failed';
    notes.push(`the instance did not start: ${started.message}`);
  }
}

async function readCurrentSettings(paths: AgentPaths): Promise<Settings | undefined> {
  try {
    return parseSettingsJson(await readFile(paths.settings, 'utf8'), paths.settings);
  } catch {
    return undefined;
  }
}

/**
 * --code on an existing clone: refused up front when the clone has local changes
 * (checkout would lose them or fail half-way) or cannot get the commit.
 */
async function assertCommitAvailable(paths: AgentPaths, manifest: Manifest): Promise<void> {
  const commit = manifest.clone.commit;
  if (!commit) throw new AnimusError('EUSAGE', `the archive records no clone commit: nothing was changed; restore without --code`);
  const clone = await cloneDir(paths);
  if (!clone) throw new AnimusError('EUSAGE', `${paths.agent.id} has no runtime clone to check out into: nothing was changed; restore without --code, or remove the agent and restore to recreate it`);
  const modified = await findModifiedFiles(clone);
  if (modified.length > 0) {
    throw new AnimusError('EEXISTS', `the clone of ${paths.agent.id} has local changes (${modified.slice(0, 3).join(', ')}): nothing was changed; commit or discard them, or restore without --code`);
  }
  const has = () => runGit(['cat-file', '-e', `${commit}^{commit}`], { cwd: clone }).then(() => true, () => false);
  if (await has()) return;
  await runGit(['fetch', '--quiet', 'origin'], { cwd: clone }).catch(() => {});
  if (!(await has())) {
    throw new AnimusError('EGIT', `commit ${commit.slice(0, 12)} is not in the clone of ${paths.agent.id} nor its origin: nothing was changed; restore without --code`);
  }
}

/**
 * The repository a recreated agent's runtime is cloned from. An archive's recorded
 * origin is code that `start` will run, and a plain archive's manifest can be edited:
 * it is used only when it is the home's own runtime repository or the configured
 * `runtimeRepo`, or with --trust-origin; otherwise the home's runtime is used.
 */
export function chooseOrigin(home: string, manifest: Manifest, options: Pick<RestoreOptions, 'trustedOrigins' | 'trustOrigin'>): { repo: string | undefined; shown: string; note?: string } {
  const own = homeLayout(home).runtimeRepo;
  const origin = manifest.clone.origin;
  if (origin === null) return { repo: undefined, shown: own };
  const trusted = isSameRepoPath(origin, own) || (options.trustedOrigins ?? []).some((repo) => repo === origin || isSameRepoPath(origin, repo));
  if (trusted || options.trustOrigin) return { repo: origin, shown: origin };
  return {
    repo: undefined,
    shown: own,
    note: `the archive names ${printable(origin)} as the runtime's origin, which is neither this home's runtime nor the configured runtimeRepo: cloned this home's runtime instead (pass --trust-origin to clone from it)`,
  };
}

/** A deploy from the chosen origin at the recorded commit; the home's own runtime when that origin is gone. */
async function recreate(options: RestoreOptions, manifest: Manifest, settings: Settings | undefined, result: RestoreResult): Promise<AgentPaths> {
  const { home } = options;
  const agent = parseAgentId(result.id);
  const notes = result.notes;
  const base = {
    home,
    agent,
    mode: settings?.message_mode ?? 'live',
    processManager: settings?.process_manager ?? 'pm2',
    name: settings?.agent.name,
    description: settings?.agent.description,
    env: {},
  } as const;
  const chosen = chooseOrigin(home, manifest, options);
  if (chosen.note) notes.push(chosen.note);
  const origin = chosen.repo;
  const commit = manifest.clone.commit ?? undefined;
  const useOrigin = origin !== undefined && (!origin.startsWith('/') || (await pathExists(origin)));
  result.origin = useOrigin ? origin : homeLayout(home).runtimeRepo;
  try {
    await deployAgent({ ...base, ...(useOrigin ? { repo: origin } : {}), ...(commit ? { ref: commit } : {}) });
  } catch (error) {
    if (!(error instanceof AnimusError) || error.code !== 'EGIT') throw error;
    notes.push(`could not clone ${origin ? printable(origin) : 'the runtime'} at ${commit?.slice(0, 12) ?? 'its head'} (${describeError(error)}); used this home's runtime instead`);
    result.origin = homeLayout(home).runtimeRepo;
    await deployAgent({ ...base });
  }
  notes.push(`recreated ${result.id}`);
  return agentPaths(home, agent);
}

/**
 * Renames the proven files into place, the current ones aside first (kept as
 * `*.pre-restore-<stamp>`, or removed once the swap is whole for a recreated agent),
 * as one journaled swap (instances/file-swap): a restore killed between two renames is
 * finished or undone by the next command on the agent, never left with the database
 * restored beside the old .env.
 */
async function swapFiles(paths: AgentPaths, files: Partial<Record<ArchivedFile, string>>, stamp: string, keepOld: boolean, result: RestoreResult): Promise<void> {
  // The database goes where the runtime will read it: the restored .env's DB_PATH (inside the folder), else the default.
  const restoredEnv = files['.env'] ? await readFile(files['.env'], 'utf8').then((text) => parseEnv(text, '.env'), () => undefined) : undefined;
  const db = restoredEnv ? resolveDbLocation(paths.dir, restoredEnv.DB_PATH).path : agentDbPath(paths);
  const targets: Record<ArchivedFile, string> = { 'animus.db': db, '.env': paths.env, 'settings.json': paths.settings, [AUDIT_ENTRY]: join(paths.dir, AUDIT_ENTRY) };
  // The audit trail goes into logs/ only when that is a real folder of the agent's: a
  // rename through a logs/ that links elsewhere would move files outside the folder.
  const auditInto = files[AUDIT_ENTRY] ? auditFolderProblem(paths) : undefined;
  if (auditInto) result.notes.push(`${AUDIT_ENTRY} not restored: ${auditInto}`);
  const moves: FileMove[] = [];
  const kept: string[] = [];
  const restored: ArchivedFile[] = [];
  for (const name of ARCHIVED_FILES) {
    const source = files[name];
    if (!source || (name === AUDIT_ENTRY && auditInto)) continue;
    const target = targets[name];
    // The database's WAL and shared-memory files belong to the old database: a stale WAL
    // beside the restored file would be replayed into it.
    const companions = name === 'animus.db' ? ['', '-wal', '-shm', '-journal'] : [''];
    for (const suffix of companions) {
      const current = `${target}${suffix}`;
      if (!(await pathExists(current))) continue;
      const aside = `${target}.pre-restore-${stamp}${suffix}`;
      moves.push({ kind: 'aside', from: current, to: aside });
      kept.push(aside);
      if (suffix === '' && keepOld) result.preRestore.push(aside);
    }
    moves.push({ kind: 'install', from: source, to: target });
    restored.push(name);
  }
  await swapAgentFiles(paths, moves, { label: 'restore', source: result.archive, discard: keepOld ? [] : kept });
  result.restored.push(...restored);
}

/** Why the audit trail cannot be put into the agent's logs/ (made when missing), or undefined. */
function auditFolderProblem(paths: AgentPaths): string | undefined {
  try {
    ensureAgentDir(paths.dir, LOGS_DIR);
    return undefined;
  } catch (error) {
    if (error instanceof AnimusError) return error.message;
    throw error;
  }
}
