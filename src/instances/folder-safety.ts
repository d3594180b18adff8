import { kindProblem, LstatMemo, statAgentPaths } from '../core/agent-fs.js';
import { isAnimusError } from '../core/errors.js';
import { existsSync } from 'node:fs';
import { DB_FILE, ENV_FILE, ERR_LOG, LOGS_DIR, OUT_LOG, SETTINGS_FILE, type AgentPaths } from '../home/layout.js';
import { DB_COMPANIONS, readDbPathSetting, resolveDbLocation, type DbLocation, type DbPathSetting } from './db-path.js';

/**
 * What `list` and `health` report about the files animus opens in an agent folder: the
 * folder itself, `.env`, `settings.json`, the database (and its -wal/-shm), `logs/` and
 * its two logs, each a symlink or not a regular file (core/agent-fs refuses to open them).
 * Each problem is one line; an empty list is a folder animus can use.
 */
export function folderSafetyProblems(paths: AgentPaths): string[] {
  return inspectFolder(paths).problems;
}

export interface FolderInspection {
  problems: string[];
  /** The folder itself is a link (or not a folder): nothing below it was looked at. */
  notAFolder: boolean;
  /** Where the database is (instances/db-path), or why it cannot be used. */
  database: { location: DbLocation } | { problem: string };
}

/** The names inspectFolder looks at (with the database's, which the .env may move). */
export const INSPECTED_NAMES = ['.', ENV_FILE, SETTINGS_FILE, LOGS_DIR, OUT_LOG, ERR_LOG] as const;

/**
 * folderSafetyProblems, with the database location it found on the way. Every name is
 * lstat'ed once (statAgentPaths; `seen` shares what the caller lstat'ed just before).
 * `dbPath` is what the caller already read of the .env's DB_PATH (health remembers it
 * with the .env's identity); without it the .env is read here.
 */
export function inspectFolder(paths: AgentPaths, dbPath?: DbPathSetting, seen: LstatMemo = new LstatMemo()): FolderInspection {
  const relative = (text: string) => text.replace(`${paths.dir}/`, '');
  let found;
  try {
    found = statAgentPaths(paths.dir, INSPECTED_NAMES, seen);
  } catch (error) {
    const message = messageOf(error);
    return { problems: [message], notAFolder: false, database: { problem: message } };
  }
  const [self, env, settings, logs, out, err] = found;
  // The folder itself: a link out of the home is this module's concern; a plain file there is the caller's "not a folder".
  if (self!.kind === 'symlink') {
    const message = kindProblem(self!, 'dir')!;
    return { problems: [message], notAFolder: true, database: { problem: message } };
  }
  if (self!.kind !== 'dir') return { problems: [], notAFolder: true, database: { problem: `${paths.dir} is not a folder` } };
  const envProblem = kindProblem(env!);
  const problems = [envProblem, kindProblem(settings!), kindProblem(logs!, 'dir')];
  if (!problems[2]) problems.push(kindProblem(out!), kindProblem(err!));
  const database = locateDatabase(paths, dbPath ?? readSetting(paths), seen);
  // A link as .env is reported once, not again as the reason the database path is unknown.
  if (!envProblem && 'problem' in database) problems.push(database.problem);
  return { problems: problems.filter((p): p is string => p !== undefined).map(relative), notAFolder: false, database };
}

function readSetting(paths: AgentPaths): DbPathSetting {
  try {
    return { value: readDbPathSetting(paths) };
  } catch (error) {
    return { problem: messageOf(error) };
  }
}

function locateDatabase(paths: AgentPaths, setting: DbPathSetting, seen: LstatMemo): FolderInspection['database'] {
  if ('problem' in setting) return setting;
  try {
    const location = resolveDbLocation(paths.dir, setting.value, (path) => existsFrom(seen, path));
    const files = statAgentPaths(paths.dir, ['', ...DB_COMPANIONS].map((suffix) => `${location.rel}${suffix}`), seen);
    const bad = files.map((file) => kindProblem(file)).find((p) => p !== undefined);
    return bad ? { problem: bad } : { location };
  } catch (error) {
    return { problem: messageOf(error) };
  }
}

/** existsSync's answer from an lstat the caller took anyway; a link (which existsSync follows) or a name not looked at is asked of the disk. */
function existsFrom(seen: LstatMemo, path: string): boolean {
  if (seen.root === undefined || path !== `${seen.root}/${DB_FILE}` || !seen.taken.has(DB_FILE)) return existsSync(path);
  const info = seen.taken.get(DB_FILE);
  if (info === undefined) return false;
  return info.isSymbolicLink() ? existsSync(path) : true;
}

function messageOf(error: unknown): string {
  if (isAnimusError(error)) return error.message;
  throw error;
}
