import { chmod, rename, rm } from 'node:fs/promises';
import type { Database } from 'better-sqlite3';
import { AnimusError, describeError } from '../core/errors.js';
import { databaseError, openDatabase } from './database.js';

/**
 * A consistent copy of a live database through SQLite's online backup API: safe
 * while the runtime writes (never a file copy of a database in use). Written to a
 * temporary name and renamed, mode 0600, so a reader never sees a partial file.
 */
export async function snapshotDatabase(source: string | Database, destination: string): Promise<void> {
  const db = typeof source === 'string' ? openDatabase(source, { readonly: true }) : source;
  const temp = `${destination}.partial`;
  try {
    // All pages in one step: copied in steps, the backup restarts whenever another
    // process writes between two of them, so a busy runtime would keep it from ever ending.
    await db.backup(temp, { progress: () => 0x7fffffff });
    await chmod(temp, 0o600);
    await rename(temp, destination);
  } catch (error) {
    await rm(temp, { force: true });
    if (error instanceof AnimusError) throw error;
    // A source that is not a database, or is corrupt, is named as such; anything else
    // (a full disk, a folder not writable) is about where the copy goes.
    const code = (error as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw databaseError(db.name, error);
    throw new AnimusError('EIO', `cannot snapshot the database to ${destination}: ${describeError(error)}`, { cause: error });
  } finally {
    if (typeof source === 'string') db.close();
  }
}
