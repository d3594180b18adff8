import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive } from '../core/pid.js';

/**
 * One runtime per agent folder: `runtime.pid` holds the owner's pid. A lock whose
 * pid is dead (or now belongs to a process that is not node) is stale and taken
 * over; a live owner makes the second runtime exit with a clear line. Two runtimes
 * on one folder would send every message to the agent twice.
 */
export const LOCK_FILE = 'runtime.pid';

export interface RuntimeLock {
  path: string;
  release(): void;
}

export type LockOutcome = { ok: true; lock: RuntimeLock } | { ok: false; holder: number; path: string };

export function acquireLock(agentDir: string): LockOutcome {
  const path = join(agentDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return { ok: true, lock: lockAt(path) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readHolder(path);
    if (holder !== undefined && holder !== process.pid && isRuntimeAlive(holder)) return { ok: false, holder, path };
    // Stale: move it aside atomically so that two starters racing here cannot both win.
    try {
      renameSync(path, `${path}.stale-${process.pid}`);
      rmSync(`${path}.stale-${process.pid}`, { force: true });
    } catch {
      // Someone else took it over first; try again.
    }
  }
  const holder = readHolder(path) ?? 0;
  return { ok: false, holder, path };
}

/** The pid in the lock file of a folder when that runtime is alive (used by `animus send`). */
export function runningRuntimePid(agentDir: string): number | undefined {
  const holder = readHolder(join(agentDir, LOCK_FILE));
  return holder !== undefined && isRuntimeAlive(holder) ? holder : undefined;
}

function lockAt(path: string): RuntimeLock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      if (readHolder(path) === process.pid) rmSync(path, { force: true });
    },
  };
}

function readHolder(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isRuntimeAlive(pid: number): boolean {
  if (!isAlive(pid)) return false;
  // A recycled pid held by something else does not hold the lock.
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /node/.test(cmdline);
  } catch {
    return true;
  }
}
