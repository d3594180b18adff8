import type { Database } from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { AnimusError } from '../core/errors.js';
import { loadOnUse } from '../core/load-package.js';
import { migrate } from './migrations.js';

export type { Database } from 'better-sqlite3';

export interface OpenOptions {
  /** Open without writing anything: no migration, no pragma that changes the file. */
  readonly?: boolean;
  /** Create the file when it does not exist (deploy, restore). */
  create?: boolean;
}

const sqlite = loadOnUse<typeof import('better-sqlite3')>('better-sqlite3');

/**
 * Opens an agent database. Writable handles get WAL (readers never block the
 * runtime's writer), foreign keys as Broca sets them, a busy timeout for the
 * CLI and runtime writing at once, and the schema migrated to the current version.
 */
export function openDatabase(path: string, options: OpenOptions = {}): Database {
  if (!options.create && !existsSync(path)) {
    throw new AnimusError('ENOTFOUND', `database ${path} does not exist: deploy the agent or restore a backup`);
  }
  let db: Database;
  try {
    const BetterSqlite3 = sqlite();
    db = new BetterSqlite3(path, { readonly: options.readonly ?? false, fileMustExist: !options.create });
  } catch (error) {
    throw databaseError(path, error);
  }
  try {
    // Reading the schema is what fails on a file that is not SQLite.
    db.pragma('schema_version');
    db.pragma('busy_timeout = 5000');
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      migrate(db);
    }
    return db;
  } catch (error) {
    db.close();
    throw databaseError(path, error);
  }
}

/** The one-line error for a database that cannot be opened or read, by SQLite's error code. */
export function databaseError(path: string, error: unknown): AnimusError {
  if (error instanceof AnimusError) return error;
  const code = (error as { code?: string }).code ?? '';
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new AnimusError('EBADDB', `${path} is not a SQLite database or is corrupt: restore it with \`animus restore\``, { cause: error });
  }
  if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'SQLITE_PERM') {
    return new AnimusError('EIO', `cannot open ${path} (${code}): check that the file and its folder are readable and writable by you`, { cause: error });
  }
  if (code === 'SQLITE_BUSY') {
    return new AnimusError('EIO', `${path} is locked by another process: try again in a moment`, { cause: error });
  }
  return new AnimusError('EBADDB', `cannot open database ${path}: ${(error as Error).message}`, { cause: error });
}

/** Whether a table has a column: read-only commands adapt to a Broca-made file. */
export function hasColumn(db: Database, table: string, column: string): boolean {
  const rows = db.pragma(`table_info(${table})`) as Array<{ name: string }>;
  return rows.some((row) => row.name === column);
}
