import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const DIR_MODE = 0o700;
export const SECRET_FILE_MODE = 0o600;

// Existence checks are synchronous on purpose: commands over a whole home make
// thousands of them, and each one through the thread pool costs more than the call.
export async function pathExists(path: string): Promise<boolean> {
  return existsSync(path);
}

export async function isDirectory(path: string): Promise<boolean> {
  return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

/**
 * The modes a folder of the home (the home itself, `.animus/`) keeps when it has one:
 * 0700, or the group's traverse (and read) that `systemd install --system --run-as`
 * grants the agents' account on purpose. Nothing wider: no group write, nothing for others.
 */
const GRANTED_HOME_MODES = new Set([0o700, 0o710, 0o750]);

/**
 * ensureDir at 0700 for the home's own folders, keeping a mode from GRANTED_HOME_MODES
 * (`animus init` after `systemd install --run-as` must not lock the account out); any
 * other mode is made 0700. Returns the mode it set, or undefined when it left it.
 */
export async function ensureHomeDir(path: string): Promise<number | undefined> {
  await mkdir(path, { recursive: true, mode: DIR_MODE });
  const mode = (await stat(path)).mode & 0o777;
  if (GRANTED_HOME_MODES.has(mode)) return undefined;
  await chmod(path, DIR_MODE);
  return DIR_MODE;
}

/** mkdir -p, then force the mode (mkdir's mode is filtered by the umask). */
export async function ensureDir(path: string, mode: number = DIR_MODE): Promise<void> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
}

/**
 * A fresh name beside `path` for writing it atomically. Unpredictable enough without
 * node:crypto (which would cost every idle agent's runtime a megabyte): the file is
 * opened with `wx`, so a name someone else made (or a symlink planted there) fails the
 * write instead of being followed or overwritten.
 */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid.toString(36)}${Math.random().toString(36).slice(2, 10)}.tmp`);
}

/**
 * Writes a file so that readers see the old content or the new, never half of it:
 * a temporary file beside the target, fsynced, then renamed over it. The mode is set
 * before any byte is written, so a secret is never readable by others even briefly.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number = SECRET_FILE_MODE): Promise<void> {
  const temp = tempPathFor(path);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.chmod(mode);
    await keepFolderOwner(handle, dirname(path));
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Root writing into a folder someone else owns (an agent folder given to the account its
 * systemd unit runs as) writes the file as that owner, so the agent can still read it.
 */
async function keepFolderOwner(handle: FileHandle, folder: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const owner = await stat(folder);
  if (owner.uid !== 0 || owner.gid !== 0) await handle.chown(owner.uid, owner.gid);
}

/** The permission bits of a path, or undefined when it does not exist. */
export async function fileMode(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mode & 0o777;
  } catch {
    return undefined;
  }
}

export function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/** writeFileAtomic for callers that cannot await (the runtime's log rotation). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode: number = SECRET_FILE_MODE): void {
  const temp = tempPathFor(path);
  const fd = openSync(temp, 'wx', mode);
  try {
    fchmodSync(fd, mode);
    writeFileSync(fd, data);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // Already closed.
    }
    rmSync(temp, { force: true });
    throw error;
  }
}
