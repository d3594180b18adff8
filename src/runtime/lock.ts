import { closeSync, lstatSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { isAlive } from '../core/pid.js';

/**
 * One runtime per agent folder. The lock is a unix socket bound in the folder,
 * `runtime.lock`: only one process can listen on a path, the kernel says whether
 * someone still does (a connect succeeds), and that answer does not depend on pids.
 * A pid lock cannot tell a live holder in another pid namespace (a second container
 * on the same volume, where both runtimes are PID 1) from its own stale file, nor a
 * reused pid from the holder: a connect can. A socket file left by a killed holder
 * refuses connections and is taken over; the takeover itself (unlink + bind) is
 * serialized through an O_EXCL file, so two starters that both found it stale cannot
 * both win. This works across pid and mount namespaces on one kernel (the socket is
 * the same inode); it cannot work across hosts (NFS), where no lock in a file does.
 *
 * `runtime.pid` beside it records the holder's pid, boot id and process start time
 * (/proc/self/stat), for messages and for `animus send`'s "is it running".
 */
export const LOCK_SOCKET = 'runtime.lock';
export const LOCK_FILE = 'runtime.pid';
const TAKEOVER = 'runtime.lock.takeover';
/** A takeover file older than this was left by a starter killed inside the few microseconds it exists. */
const TAKEOVER_STALE_MS = 10_000;
const MAX_SOCKET_PATH = 107;

export interface RuntimeLock {
  path: string;
  release(): void;
}

export type LockOutcome = { ok: true; lock: RuntimeLock } | { ok: false; holder: number | undefined; path: string };

export interface LockHolder {
  pid: number;
  bootId?: string;
  startTime?: string;
}

export async function acquireLock(agentDir: string): Promise<LockOutcome> {
  const path = join(agentDir, LOCK_SOCKET);
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw Object.assign(new Error(`the folder path is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes)`), { code: 'ENAMETOOLONG' });
  for (let attempt = 0; attempt < 50; attempt++) {
    const server = await listen(path);
    if (server) return { ok: true, lock: held(agentDir, path, server) };
    if (await answers(path)) return { ok: false, holder: readHolder(agentDir)?.pid, path };
    // Stale: whoever creates the takeover file replaces the socket; the others look again.
    const takeover = join(agentDir, TAKEOVER);
    let fd: number | undefined;
    try {
      fd = openSync(takeover, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - (statSync(takeover, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > TAKEOVER_STALE_MS) rmSync(takeover, { force: true });
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    try {
      // Checked again under the takeover file: another starter may have just replaced it.
      if (!(await answers(path))) {
        const found = lstatSync(path, { throwIfNoEntry: false });
        if (found && !found.isSocket()) throw Object.assign(new Error(`${path} is not a socket: move it away`), { code: 'EEXIST' });
        if (found) unlinkSync(path);
        const server = await listen(path);
        if (server) return { ok: true, lock: held(agentDir, path, server) };
      }
    } finally {
      closeSync(fd);
      rmSync(takeover, { force: true });
    }
  }
  return { ok: false, holder: readHolder(agentDir)?.pid, path };
}

/** The holder recorded in a folder when its runtime is alive (used by `animus send`, which cannot wait for a connect). */
export function runningRuntimePid(agentDir: string): number | undefined {
  const holder = readHolder(agentDir);
  if (!holder || !isAlive(holder.pid)) return undefined;
  // A recycled pid is not the holder: its start time differs (same boot), or it is not node.
  const self = processIdentity(holder.pid);
  if (holder.startTime && self.startTime && holder.bootId === self.bootId && holder.startTime !== self.startTime) return undefined;
  return holder.pid;
}

export function readHolder(agentDir: string): LockHolder | undefined {
  try {
    const [pid, bootId, startTime] = readFileSync(join(agentDir, LOCK_FILE), 'utf8').trim().split(/\s+/);
    const n = Number.parseInt(pid ?? '', 10);
    return Number.isInteger(n) && n > 0 ? { pid: n, ...(bootId ? { bootId } : {}), ...(startTime ? { startTime } : {}) } : undefined;
  } catch {
    return undefined;
  }
}

/** Boot id and start time (clock ticks since boot, field 22 of /proc/<pid>/stat) of a process, where /proc has them. */
export function processIdentity(pid: number | 'self'): { bootId?: string; startTime?: string } {
  const out: { bootId?: string; startTime?: string } = {};
  try {
    out.bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    out.startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    // Not Linux: the pid alone is recorded.
  }
  return out;
}

function held(agentDir: string, path: string, server: Server): RuntimeLock {
  const id = processIdentity('self');
  writeFileSync(join(agentDir, LOCK_FILE), `${process.pid} ${id.bootId ?? ''} ${id.startTime ?? ''}\n`.replace(/ +\n$/, '\n'), { mode: 0o600 });
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      // Closing the server unlinks its socket file (libuv); the pid record goes with it.
      server.close();
      if (readHolder(agentDir)?.pid === process.pid) rmSync(join(agentDir, LOCK_FILE), { force: true });
    },
  };
}

/** Listens on the path; undefined when it is taken (by a live or a stale socket, or another file). */
function listen(path: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(path, () => {
      // The lock must not keep the process alive by itself.
      server.unref();
      resolve(server);
    });
  });
}

/** Whether a process accepts connections on the socket: the holder is alive. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      // ECONNREFUSED: a socket file nobody listens on; ENOENT: gone meanwhile. Anything else (EACCES) counts as held.
      resolve(!(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' || error.code === 'ENOTSOCK'));
    });
  });
}
