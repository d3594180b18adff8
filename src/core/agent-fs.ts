import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, readlinkSync, readSync, realpathSync, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { AnimusError } from './errors.js';
import { resolvedPath } from './resolved-path.js';
import { DIR_MODE, SECRET_FILE_MODE, writeFileAtomic } from './fs.js';

/**
 * The one way animus and the runtime open a file inside an agent folder. An agent's
 * process can write its own folder, so every name in it may have been replaced by a
 * symlink (to another agent's `.env`, to `/etc/passwd`) or a FIFO (a reader that
 * blocks for ever). The rule, enforced here and nowhere else:
 *
 * - No symlink is followed below the agent folder, not even one whose target stays
 *   inside it: the folder is flat and animus makes no links in it, so a link there is
 *   always someone's doing, and refusing every link needs no resolution that could race.
 *   The agent folder itself must be a real directory (not a link out of the home).
 * - The last component is opened with O_NOFOLLOW (a link swapped in after the check
 *   fails with ELOOP instead of being followed) and O_NONBLOCK (a FIFO does not block),
 *   then fstat'ed: anything but a regular file is refused. On Linux the opened file's
 *   real path (/proc/self/fd) is checked to be inside the folder, which closes the race
 *   of a directory component swapped for a link between the lstat walk and the open.
 * - Errors name the file and say what it is: `<path> is a symbolic link: ...`.
 *
 * The clone (`runtime/`) is git's: git itself never follows links out of a work tree
 * when it reads its own files, and only the path of the clone folder is checked here.
 */

export type AgentFileKind = 'file' | 'dir' | 'symlink' | 'other' | 'missing';

export interface AgentFileStat {
  path: string;
  kind: AgentFileKind;
  /** Present for file, dir and other. */
  stats?: Stats;
  /** Which component is the symlink (or not a folder), when it is not the last one. */
  via?: string;
}

/** The absolute path of `rel` inside `dir`; refuses anything that climbs out (`..`, an absolute path elsewhere). */
export function pathInside(dir: string, rel: string): string {
  return pathInsideRoot(resolvedPath(dir), rel);
}

/** pathInside for a folder already resolved. */
function pathInsideRoot(root: string, rel: string): string {
  // The names animus itself passes (`.env`, `logs/runtime.log`) need no resolving: health asks for a dozen per agent.
  if (plainParts(rel)) return `${root === sep ? '' : root}${sep}${rel}`;
  const target = resolve(root, rel);
  const back = relative(root, target);
  if (back === '' || (!back.startsWith('..') && !isAbsolute(back))) return target;
  throw unsafe(target, `${target} is outside the agent folder ${root}`, 'keep every agent file inside its own folder');
}

/** `rel` split at `/` when every part is a plain name (no `.`, `..` or empty part), else undefined. */
function plainParts(rel: string): readonly string[] | undefined {
  const known = plainNames.get(rel);
  if (known !== undefined) return known ?? undefined;
  let parts: string[] | null = rel === '' || rel.includes('\0') ? null : rel.split('/');
  if (parts?.some((part) => part === '' || part === '.' || part === '..')) parts = null;
  // The names asked for are a handful of animus's own, asked for every agent.
  if (plainNames.size < 256) plainNames.set(rel, parts);
  return parts ?? undefined;
}

const plainNames = new Map<string, readonly string[] | null>();

/** Whether `path` (absolute or relative to `dir`) stays inside `dir`, by name only. */
export function isInside(dir: string, path: string): boolean {
  const back = relative(resolve(dir), resolve(dir, path));
  return back !== '' && !back.startsWith('..') && !isAbsolute(back);
}

/**
 * What `rel` is, without following any link: the agent folder itself, then each
 * component below it, is lstat'ed. A link anywhere on the way makes it `symlink`.
 */
export function statAgentPath(dir: string, rel: string): AgentFileStat {
  return walkAgentPath(resolvedPath(dir), rel, (path) => lstatOrThrow(path));
}

/**
 * What statAgentPaths lstat'ed in one agent folder, by path relative to it: one look at a
 * folder (health's, list's) shares it across its calls. One memo serves one folder.
 */
export class LstatMemo {
  root: string | undefined;
  /** The folder as the first caller named it, resolved into `root`. */
  named: string | undefined;
  readonly taken = new Map<string, Stats | undefined>();
  /** What each name walked to: health looks at some names twice (the safety look, then its checks). */
  readonly found = new Map<string, AgentFileStat>();
}

/**
 * statAgentPath for several names in one folder, each path component lstat'ed once
 * (across calls given the same `seen`): `list` and `health` look at a dozen names per
 * agent, all below the same folder, within a few microseconds.
 */
export function statAgentPaths(dir: string, rels: readonly string[], seen: LstatMemo = new LstatMemo()): AgentFileStat[] {
  const root = seen.root !== undefined && dir === seen.named ? seen.root : resolvedPath(dir);
  if (seen.root === undefined) {
    seen.root = root;
    seen.named = dir;
  }
  if (seen.root !== root) throw new Error(`one LstatMemo serves one folder: ${seen.root}, not ${root}`);
  const lstat = (path: string, key: string) => {
    if (seen.taken.has(key)) return seen.taken.get(key);
    const info = lstatOrThrow(path);
    seen.taken.set(key, info);
    return info;
  };
  return rels.map((rel) => {
    let found = seen.found.get(rel);
    if (!found) seen.found.set(rel, (found = walkAgentPath(root, rel, lstat)));
    return found;
  });
}

function lstatOrThrow(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    throw ioError(path, error);
  }
}

/**
 * Walks `rel` down from the folder, lstat-ing each component (`lstat` gets the absolute
 * path and the path relative to the folder, by which a memo keeps it).
 */
function walkAgentPath(root: string, rel: string, lstat: (path: string, key: string) => Stats | undefined): AgentFileStat {
  const self = rel === '' || rel === '.';
  const target = self ? root : pathInsideRoot(root, rel);
  const plain = plainParts(rel);
  const parts = target === root ? [] : (plain ?? relative(root, target).split(sep));
  let current = root;
  let key = '';
  for (let i = -1; i < parts.length; i++) {
    const last = i === parts.length - 1;
    if (i >= 0) {
      current = `${current === sep ? '' : current}${sep}${parts[i]}`;
      // The names animus asks for are constants: their strings (and hashes) are reused.
      key = i === 0 ? parts[0]! : last && plain ? rel : `${key}/${parts[i]}`;
    }
    const info = lstat(current, key);
    if (!info) return { path: target, kind: 'missing' };
    if (info.isSymbolicLink()) return { path: target, kind: 'symlink', ...(last ? {} : { via: current }) };
    if (last) return { path: target, kind: info.isFile() ? 'file' : info.isDirectory() ? 'dir' : 'other', stats: info };
    if (!info.isDirectory()) return { path: target, kind: 'other', via: current };
  }
  return { path: target, kind: 'missing' };
}

/** The one-line problem with `rel` as a regular file (missing is fine), or undefined: what list and health report. */
export function agentFileProblem(dir: string, rel: string, expect: 'file' | 'dir' = 'file', seen?: LstatMemo): string | undefined {
  let found: AgentFileStat;
  try {
    found = seen ? statAgentPaths(dir, [rel], seen)[0]! : statAgentPath(dir, rel);
  } catch (error) {
    return error instanceof AnimusError ? error.message : String(error);
  }
  return kindProblem(found, expect);
}

/** agentFileProblem for what statAgentPath(s) found. */
export function kindProblem(found: AgentFileStat, expect: 'file' | 'dir' = 'file'): string | undefined {
  if (found.kind === 'missing' || found.kind === expect) return undefined;
  return describeKind(found, expect);
}

function describeKind(found: AgentFileStat, expect: 'file' | 'dir'): string {
  const name = found.via ?? found.path;
  if (found.kind === 'symlink') {
    let target = '';
    try {
      target = ` (to ${readlinkSync(name)})`;
    } catch {
      // Gone meanwhile: the kind is still what was seen.
    }
    return `${name} is a symbolic link${target}: animus never follows links in an agent folder; replace it with the real ${found.via ? 'folder' : expect === 'dir' ? 'folder' : 'file'}`;
  }
  if (found.via) return `${found.via} is not a folder: move it away`;
  return `${found.path} is not a regular ${expect === 'dir' ? 'folder' : 'file'}: move it away`;
}

/** Throws the one-line EUNSAFEPATH error unless `rel` is a regular file (or a folder) or missing. */
export function assertAgentPath(dir: string, rel: string, expect: 'file' | 'dir' = 'file'): AgentFileStat {
  const found = statAgentPath(dir, rel);
  if (found.kind === 'missing' || found.kind === expect) return found;
  throw new AnimusError('EUNSAFEPATH', describeKind(found, expect), { detail: { path: found.path, kind: found.kind } });
}

export interface OpenAgentFileOptions {
  /** `r` (default), `a` (append, create), `w` (truncate, create). */
  flags?: 'r' | 'a' | 'w';
  /** For a file that `a`/`w` creates; also forced on it (fchmod). Default 0600. */
  mode?: number;
  /** Refuse a file with more than one hard link (another agent's secret linked in under a log's name). */
  singleLink?: boolean;
}

const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const NONBLOCK = constants.O_NONBLOCK ?? 0;

function openFlags(flags: 'r' | 'a' | 'w'): number {
  const base = flags === 'r' ? constants.O_RDONLY : flags === 'a' ? constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND : constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
  return base | NOFOLLOW | NONBLOCK;
}

/**
 * Opens `rel` inside the agent folder as a regular file, following no link. Returns the
 * fd, or undefined when the file is missing (for `r`). The caller closes it.
 */
export function openAgentFileSync(dir: string, rel: string, options: OpenAgentFileOptions = {}): number | undefined {
  return openAgentFd(dir, rel, options)?.fd;
}

/** openAgentFileSync, with the size the opened file had (its fstat is taken anyway). */
function openAgentFd(dir: string, rel: string, options: OpenAgentFileOptions): { fd: number; size: number } | undefined {
  const flags = options.flags ?? 'r';
  const found = assertAgentPath(dir, rel);
  if (found.kind === 'missing' && flags === 'r') return undefined;
  let fd: number;
  try {
    fd = openSync(found.path, openFlags(flags), options.mode ?? SECRET_FILE_MODE);
  } catch (error) {
    return refusedOpen(error, dir, rel, found.path, flags);
  }
  try {
    const { size } = verifyOpened(fd, dir, found.path, options);
    if (flags !== 'r') fchmodSync(fd, options.mode ?? SECRET_FILE_MODE);
    return { fd, size };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** The promise flavour of openAgentFileSync, for streaming readers (log tails). */
export async function openAgentFile(dir: string, rel: string, options: OpenAgentFileOptions = {}): Promise<FileHandle | undefined> {
  const flags = options.flags ?? 'r';
  const found = assertAgentPath(dir, rel);
  if (found.kind === 'missing' && flags === 'r') return undefined;
  let handle: FileHandle;
  try {
    handle = await open(found.path, openFlags(flags), options.mode ?? SECRET_FILE_MODE);
  } catch (error) {
    return refusedOpen(error, dir, rel, found.path, flags);
  }
  try {
    verifyOpened(handle.fd, dir, found.path, options);
    if (flags !== 'r') await handle.chmod(options.mode ?? SECRET_FILE_MODE);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A failed open: undefined for a missing file that was to be read, else the one-line error (a link or a FIFO is unsafe). */
function refusedOpen(error: unknown, dir: string, rel: string, path: string, flags: 'r' | 'a' | 'w'): undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' && flags === 'r') return undefined;
  if (code === 'ELOOP' || code === 'ENXIO') throw new AnimusError('EUNSAFEPATH', describeKind(statAgentPath(dir, rel), 'file'), { cause: error });
  throw ioError(path, error);
}

function verifyOpened(fd: number, dir: string, path: string, options: OpenAgentFileOptions): Stats {
  const info = fstatSync(fd);
  if (!info.isFile()) throw new AnimusError('EUNSAFEPATH', `${path} is not a regular file: move it away`, { detail: { path, kind: 'other' } });
  if (options.singleLink && info.nlink > 1) {
    throw new AnimusError('EUNSAFEPATH', `${path} has ${info.nlink} hard links: it may be another file under this name; replace it with a file of its own`, { detail: { path, kind: 'hardlink' } });
  }
  const real = openedPath(fd);
  if (real !== undefined && !isInside(realRoot(dir), real)) {
    throw new AnimusError('EUNSAFEPATH', `${path} resolves to ${real}, outside the agent folder: a link was swapped in; replace it with the real file`, { detail: { path, kind: 'symlink' } });
  }
  return info;
}

/** Where an fd really points (Linux); undefined where /proc is not there. */
function openedPath(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

function realRoot(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return resolve(dir);
  }
}

/** The whole file, or undefined when it is missing. */
export function readAgentFile(dir: string, rel: string, options: Omit<OpenAgentFileOptions, 'flags' | 'mode'> = {}): Buffer | undefined {
  const opened = openAgentFd(dir, rel, options);
  if (!opened) return undefined;
  const { fd, size } = opened;
  try {
    // Sized by the fstat (plus a byte to see the end in one read): health reads two files
    // per agent, and a 64 KiB buffer for each of a few hundred bytes kept the GC busy.
    let data = Buffer.allocUnsafe(size + 1);
    let length = 0;
    for (;;) {
      if (length === data.length) data = Buffer.concat([data, Buffer.allocUnsafe(Math.max(data.length, 64 * 1024))]);
      const n = readSync(fd, data, length, data.length - length, null);
      if (n === 0) break;
      length += n;
    }
    return data.subarray(0, length);
  } catch (error) {
    throw ioError(pathInside(dir, rel), error);
  } finally {
    closeSync(fd);
  }
}

export function readAgentText(dir: string, rel: string): string | undefined {
  return readAgentFile(dir, rel)?.toString('utf8');
}

/**
 * Writes `rel` atomically (temp file + rename). The rename replaces a link at that name
 * instead of writing through it; the folders on the way are checked to be real ones.
 */
export async function writeAgentFileAtomic(dir: string, rel: string, data: string | Uint8Array, mode: number = SECRET_FILE_MODE): Promise<void> {
  const target = pathInside(dir, rel);
  const parent = relative(resolve(dir), resolve(target, '..'));
  assertAgentPath(dir, parent === '' ? '.' : parent, 'dir');
  await writeFileAtomic(target, data, mode);
}

/**
 * mkdir -p of `rel` inside the agent folder at `mode`, never through a link: an
 * existing component that is a link (say `logs/` pointing outside the home) is refused,
 * not written into or chmod'ed. The mode is set through an fd opened with O_NOFOLLOW.
 */
export function ensureAgentDir(dir: string, rel: string, mode: number = DIR_MODE): string {
  const root = resolve(dir);
  assertAgentPath(root, '.', 'dir');
  const target = pathInside(root, rel);
  let current = root;
  for (const part of relative(root, target).split(sep)) {
    current = `${current}${sep}${part}`;
    try {
      mkdirSync(current, { mode });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(current, error);
    }
    const found = statAgentPath(root, relative(root, current));
    if (found.kind !== 'dir') throw new AnimusError('EUNSAFEPATH', describeKind(found, 'dir'), { detail: { path: current, kind: found.kind } });
  }
  const fd = openSync(target, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0) | NOFOLLOW);
  try {
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
  return target;
}

/** Creates the file if missing (never truncates) and makes it `mode`: a log another program appends to. */
export function ensureAgentFile(dir: string, rel: string, mode: number = SECRET_FILE_MODE): string {
  const fd = openAgentFileSync(dir, rel, { flags: 'a', mode });
  closeSync(fd!);
  return pathInside(dir, rel);
}

function unsafe(path: string, what: string, fix: string): AnimusError {
  return new AnimusError('EUNSAFEPATH', `${what}: ${fix}`, { detail: { path } });
}

function ioError(path: string, error: unknown): AnimusError {
  if (error instanceof AnimusError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  return new AnimusError('EIO', `cannot read ${path} (${code}): check its permissions`, { cause: error });
}
