import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnimusError, EXIT, describeError } from '../core/errors.js';
import { DIR_MODE } from '../core/fs.js';
import { isAlive } from '../core/pid.js';
import { lockFileOf, swapJournalOf, type AgentPaths } from '../home/layout.js';

/**
 * One operation at a time per agent: every command that changes an agent (settings,
 * env, start/stop/restart, backup, restore, update, rollback, remove, adopt, deploy,
 * queue and users writes) runs its work inside `withAgentLock`. Read-only commands
 * never take it and never wait for it.
 *
 * The lock is a file `<home>/.animus/locks/<agent-id>.lock`, beside the agent rather
 * than in its folder, so that it exists before a deploy or restore has made the folder
 * and survives a restore replacing it. It is made by link(2) from a fully written
 * temporary file, so it appears with its content whole or not at all, and it names its
 * holder: pid, the process start time (from /proc/<pid>/stat, so a reused pid is not
 * taken for the holder), the boot and host, the command and since when.
 *
 * A holder killed with SIGKILL leaves its file behind; the next taker sees the holder
 * is gone and takes over (see takeOver: two takers racing on one stale lock cannot
 * both win). Each lock carries a random nonce, so a holder only ever removes its own.
 */

export interface LockOptions {
  /** What the holder is doing, shown to whoever waits: `settings set`, `start --all`. */
  command: string;
  /** How long to wait for a busy agent before giving up (default 2 s). */
  waitMs?: number;
  signal?: AbortSignal;
}

export interface LockHolder {
  pid: number;
  /** /proc/<pid>/stat field 22: the holder's start time in clock ticks since boot. */
  start?: string;
  boot?: string;
  host: string;
  command: string;
  since: string;
  nonce: string;
}

export const DEFAULT_LOCK_WAIT_MS = 2000;
const POLL_MS = 100;
/** A lock file that cannot be read as one (written by hand, truncated disk) is stale after this. */
const UNREADABLE_STALE_MS = 10_000;

/** The locks this async call chain holds: a command that calls another operation on the same agent re-enters. */
const held = new AsyncLocalStorage<ReadonlySet<string>>();

// Where the lock and a swap's journal live, re-exported for the lock's users.
export { lockFileOf, swapJournalOf };

/**
 * A swap of the agent's files that a killed command left half-done is finished or undone
 * by whoever takes the lock next, before its own work: one stat when there is none.
 */
async function recoverInterrupted(paths: AgentPaths): Promise<void> {
  if (!existsSync(swapJournalOf(paths))) return;
  const { recoverSwap } = await import('./file-swap.js');
  await recoverSwap(paths);
}

/** Runs `work` holding the agent's operation lock; re-entrant within one async call chain. */
export async function withAgentLock<T>(paths: AgentPaths, options: LockOptions, work: () => Promise<T>): Promise<T> {
  const file = lockFileOf(paths);
  const mine = held.getStore();
  if (mine?.has(file)) return work();
  const release = await acquire(file, paths.agent.id, options);
  try {
    await recoverInterrupted(paths);
    return await held.run(new Set([...(mine ?? []), file]), work);
  } finally {
    await release();
  }
}

export interface LockedFleet {
  /** The agents whose lock was taken, in the order given. */
  locked: AgentPaths[];
  /** The agents another command holds (after the wait), or whose interrupted swap could not be put in order, each with its one-line error. */
  busy: Array<{ paths: AgentPaths; error: AnimusError }>;
}

/**
 * A fleet command's locks: each agent's taken on its own (the waits overlap, so a
 * busy fleet costs one wait, not one per agent), the busy ones reported and skipped,
 * and `work` run over the rest in one batch holding them. Never all-or-nothing.
 */
export async function withAgentLocks<T>(agents: AgentPaths[], options: LockOptions, work: (fleet: LockedFleet) => Promise<T>): Promise<T> {
  const mine = held.getStore() ?? new Set<string>();
  const releases: Array<() => Promise<void>> = [];
  const busy: LockedFleet['busy'] = [];
  const locked: AgentPaths[] = [];
  const outcomes: Array<{ paths: AgentPaths; ok: boolean; error?: unknown; skip?: boolean }> = new Array(agents.length);
  let next = 0;
  const slot = async () => {
    for (let i = next++; i < agents.length; i = next++) {
      const paths = agents[i]!;
      const file = lockFileOf(paths);
      if (mine.has(file)) {
        outcomes[i] = { paths, ok: true };
        continue;
      }
      let release: (() => Promise<void>) | undefined;
      try {
        release = await acquire(file, paths.agent.id, options);
      } catch (error) {
        outcomes[i] = { paths, ok: false, error };
        continue;
      }
      try {
        await recoverInterrupted(paths);
        releases.push(release);
        outcomes[i] = { paths, ok: true };
      } catch (error) {
        // An interrupted swap that cannot be put in order: that agent is left alone, the others go on.
        await release();
        outcomes[i] = { paths, ok: false, error, skip: true };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(16, agents.length) }, slot));
    for (const outcome of outcomes) {
      if (outcome.ok) locked.push(outcome.paths);
      else if (outcome.error instanceof AnimusError && (outcome.error.code === 'EEXISTS' || outcome.skip)) busy.push({ paths: outcome.paths, error: outcome.error });
      else throw outcome.error;
    }
    return await held.run(new Set([...mine, ...locked.map(lockFileOf)]), () => work({ locked, busy }));
  } finally {
    await Promise.all(releases.map((release) => release()));
  }
}

/** Who holds the agent's lock now, if anyone alive does (for status output and tests). */
export async function lockHolder(paths: AgentPaths): Promise<LockHolder | undefined> {
  const read = await readLock(lockFileOf(paths));
  return read && !isStale(read) ? read.holder : undefined;
}

async function acquire(file: string, id: string, options: LockOptions): Promise<() => Promise<void>> {
  // Made 0700 when missing, never chmod'ed after: `systemd install --run-as` opens it to the
  // agents' account (2770), and a lock taken by root must not close it again. Lock files are
  // group-readable (no secret in them) so root and the account each see who holds a lock.
  const me = describeSelf(options.command);
  const text = `${JSON.stringify(me)}\n`;
  const temp = `${file}.${me.nonce}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
    await writeFile(temp, text, { mode: 0o640, flag: 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const hint = code === 'EACCES' || code === 'EPERM' ? `${dirname(file)} is not writable by you: run it as the home's owner (or root)` : describeError(error);
    throw new AnimusError('EIO', `cannot lock ${id}: ${hint}`, { cause: error, ...(code === 'EACCES' || code === 'EPERM' ? { exitCode: EXIT.environment } : {}) });
  }
  try {
    const deadline = Date.now() + (options.waitMs ?? DEFAULT_LOCK_WAIT_MS);
    for (;;) {
      options.signal?.throwIfAborted();
      try {
        await link(temp, file);
        return () => releaseLock(file, text);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new AnimusError('EIO', `cannot lock ${id} (${file}): ${describeError(error)}`, { cause: error });
        }
      }
      const current = await readLock(file);
      if (current === undefined) continue; // released between our link and our read
      if (isStale(current)) {
        if (!(await takeOver(file, current.text, temp))) await sleep(10, undefined, { signal: options.signal });
        continue;
      }
      if (Date.now() >= deadline) throw busyError(id, current.holder);
      await sleep(POLL_MS, undefined, { signal: options.signal });
    }
  } finally {
    await rm(temp, { force: true });
  }
}

/** Removes our lock, and only ours: a lock that is no longer our file is left alone. */
async function releaseLock(file: string, text: string): Promise<void> {
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current === text) await rm(file, { force: true });
}

/**
 * Removes a stale lock. Takeovers are serialized by a guard file beside the lock, so
 * that two takers who both judged the same lock stale cannot remove each other's
 * fresh one: under the guard the lock is read again, and removed only if it is still
 * that stale lock (nothing else removes a lock whose holder is gone). Returns false
 * when another taker holds the guard.
 */
async function takeOver(file: string, staleText: string, mine: string): Promise<boolean> {
  const guard = `${file}.takeover`;
  try {
    await link(mine, guard);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // A taker killed inside its takeover leaves the guard: it is stale as a lock is.
    const other = await readLock(guard);
    if (other && isStale(other)) await removeIfUnchanged(guard, other.text);
    return false;
  }
  const guardText = await readFile(mine, 'utf8');
  try {
    const current = await readFile(file, 'utf8').catch(() => undefined);
    if (current === staleText) await rm(file, { force: true });
    return true;
  } finally {
    await removeIfUnchanged(guard, guardText);
  }
}

/** Removes `file` if it still holds `text`: renamed aside first, put back if it turned out to be another. */
async function removeIfUnchanged(file: string, text: string): Promise<void> {
  const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readFile(aside, 'utf8').catch(() => undefined);
  // link, not rename: a file made meanwhile under the name is never overwritten.
  if (moved !== text) await link(aside, file).catch(() => {});
  await rm(aside, { force: true });
}

function busyError(id: string, holder: LockHolder | undefined): AnimusError {
  const who = holder
    ? `\`${holder.command}\` (pid ${holder.pid}${holder.host === hostname() ? '' : ` on ${holder.host}`}) since ${holder.since}`
    : 'another animus command';
  return new AnimusError('EEXISTS', `agent ${id} is busy: ${who}; try again when it has finished`, {
    exitCode: EXIT.conflict,
    detail: holder ? { holder: { pid: holder.pid, host: holder.host, command: holder.command, since: holder.since } } : undefined,
  });
}

interface ReadLock {
  text: string;
  holder?: LockHolder;
  mtimeMs: number;
}

async function readLock(file: string): Promise<ReadLock | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AnimusError('EIO', `cannot read the lock ${file}: ${describeError(error)}`, { cause: error });
  }
  const mtimeMs = statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (!Number.isInteger(holder.pid) || holder.pid <= 0 || typeof holder.host !== 'string') return { text, mtimeMs };
    return { text, holder, mtimeMs };
  } catch {
    return { text, mtimeMs };
  }
}

/** Whether the lock's holder is gone: on this host, a pid that is dead or now another process. */
function isStale(lock: ReadLock): boolean {
  const holder = lock.holder;
  if (!holder) return Date.now() - lock.mtimeMs > UNREADABLE_STALE_MS;
  // A lock from another machine (a home on a shared disk) cannot be checked: it holds.
  if (holder.host !== hostname()) return false;
  if (holder.boot && bootId() && holder.boot !== bootId()) return true;
  // Our own pid: another call chain of this process holds it, unless the pid was reused.
  if (holder.pid === process.pid) return holder.start !== processStart(process.pid);
  if (!isAlive(holder.pid)) return true;
  const start = processStart(holder.pid);
  return holder.start !== undefined && start !== undefined && start !== holder.start;
}

function describeSelf(command: string): LockHolder {
  return {
    pid: process.pid,
    start: processStart(process.pid),
    boot: bootId(),
    host: hostname(),
    command,
    since: new Date().toISOString(),
    nonce: randomBytes(8).toString('hex'),
  };
}

/** Field 22 of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses). */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

let boot: string | null | undefined;
function bootId(): string | undefined {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      boot = null;
    }
  }
  return boot ?? undefined;
}
