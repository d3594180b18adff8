import { assertAgentPath, isInside, readAgentText } from '../core/agent-fs.js';
import { AnimusError, isAnimusError } from '../core/errors.js';
import { resolvedPath } from '../core/resolved-path.js';
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { parseEnv } from '../config/env-file.js';
import { DB_FILE, ENV_FILE, LEGACY_DB_FILE, type AgentPaths } from '../home/layout.js';

/**
 * The one answer to "which database does this agent use", for the runtime and every
 * command (queue, users, health, backup, restore, send, update, adopt), so the tools
 * never read one file while the runtime writes another.
 *
 * - `DB_PATH` in the folder's `.env` (Broca's name) is honoured only when it resolves
 *   inside the agent folder: relative to the folder, or absolute to a file in it. One
 *   that leaves the folder (`../agent-<other>/animus.db`, `/srv/x.db`) is refused: it
 *   would make `animus send` write into another agent's database.
 * - Else `animus.db`, or Broca's `sanctum.db` in an adopted folder that only has that.
 * - The database and its `-wal`, `-shm` and `-journal` companions must be regular files
 *   (or missing), never symlinks: SQLite opens them by name and would follow a link.
 */

export type DbSource = 'env' | 'default' | 'legacy';

export interface DbLocation {
  path: string;
  /** Relative to the agent folder. */
  rel: string;
  source: DbSource;
}

export const DB_COMPANIONS = ['-wal', '-shm', '-journal'] as const;

/**
 * Resolves a DB_PATH value (or its absence) for a folder; throws EBADENV (exit 5) for one
 * outside it. `exists` answers existsSync's question for the default names (health answers
 * from the lstats it took anyway).
 */
export function resolveDbLocation(agentDir: string, dbPathSetting: string | undefined, exists: (path: string) => boolean = existsSync): DbLocation {
  const dir = resolvedPath(agentDir);
  const setting = dbPathSetting?.trim() ?? '';
  if (setting !== '') {
    const path = resolve(dir, setting);
    if (!isInside(dir, path)) {
      throw new AnimusError('EBADENV', `DB_PATH=${setting} in ${dir}/${ENV_FILE} is outside the agent folder: remove it (the database is ${DB_FILE}) or point it at a file inside ${dir}`, {
        detail: { dbPath: setting },
      });
    }
    return { path, rel: relative(dir, path), source: 'env' };
  }
  // A plain name below a resolved folder: resolve() would only concatenate (health asks for every agent).
  const below = (name: string) => `${dir === '/' ? '' : dir}/${name}`;
  const primary = below(DB_FILE);
  if (!exists(primary) && exists(below(LEGACY_DB_FILE))) return { path: below(LEGACY_DB_FILE), rel: LEGACY_DB_FILE, source: 'legacy' };
  return { path: primary, rel: DB_FILE, source: 'default' };
}

/** Refuses (EUNSAFEPATH) a database or companion file that is a link or not a regular file. */
export function assertDatabaseFiles(agentDir: string, location: DbLocation): void {
  for (const suffix of ['', ...DB_COMPANIONS]) assertAgentPath(agentDir, `${location.rel}${suffix}`);
}

/**
 * The checked database location of an agent, for the commands. A `.env` that cannot be
 * parsed leaves the default (the runtime reports the broken `.env` itself); a `.env`
 * that is a link, or a DB_PATH outside the folder, is refused.
 */
export function agentDbLocation(paths: AgentPaths): DbLocation {
  return agentDbLocationFrom(paths, readDbPathSetting(paths));
}

/** agentDbLocation for a caller that has read the .env already (its DB_PATH: dbPathOf). */
export function agentDbLocationFrom(paths: AgentPaths, dbPathSetting: string | undefined): DbLocation {
  const location = resolveDbLocation(paths.dir, dbPathSetting);
  assertDatabaseFiles(paths.dir, location);
  return location;
}

/** agentDbLocation's path. */
export function agentDbPath(paths: AgentPaths): string {
  return agentDbLocation(paths).path;
}

/** The one-line problem with an agent's database location, or undefined: what list and health report. */
export function agentDbProblem(paths: AgentPaths): string | undefined {
  try {
    agentDbLocation(paths);
    return undefined;
  } catch (error) {
    if (isAnimusError(error)) return error.message;
    throw error;
  }
}

/** What the .env says of DB_PATH: its value (undefined: none, or a .env that cannot be parsed), or why the .env cannot be read (a link). */
export type DbPathSetting = { value: string | undefined } | { problem: string };

/** The .env's DB_PATH, read through core/agent-fs; throws EUNSAFEPATH for a .env that is a link. */
export function readDbPathSetting(paths: AgentPaths): string | undefined {
  return dbPathOf(readAgentText(paths.dir, ENV_FILE), paths.env);
}

/** DB_PATH in a .env's text; undefined when there is none, or the text does not parse (the runtime reports that itself). */
export function dbPathOf(text: string | undefined, file: string): string | undefined {
  if (text === undefined) return undefined;
  try {
    return parseEnv(text, file).DB_PATH;
  } catch (error) {
    if (isAnimusError(error) && error.code === 'EBADENV') return undefined;
    throw error;
  }
}
