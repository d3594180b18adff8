import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic, pathExists } from '../core/fs.js';
import { homeLayout } from '../home/layout.js';
import type { DatabaseProbe } from './database-probe.js';

/**
 * What health read from each database last time, keyed by the identity of the
 * database file and its WAL (device, inode, size, mtime and ctime in nanoseconds, as
 * git keys its index). SQLite cannot change a database without changing one of
 * those, and ctime cannot be set back by anyone, so an agent whose files did not
 * move is not opened again: `health --watch` over a thousand mostly idle agents
 * reads only the ones that changed. Failed probes are never cached. Kept in
 * `<home>/.animus/health-cache.json`; the agents' folders are never written.
 */
export interface CachedProbe {
  key: string;
  probe: DatabaseProbe;
}

export type ProbeCache = Record<string, CachedProbe>;

const VERSION = 1;

function cachePath(home: string): string {
  return join(homeLayout(home).stateDir, 'health-cache.json');
}

export function loadProbeCache(home: string): ProbeCache {
  try {
    const raw = JSON.parse(readFileSync(cachePath(home), 'utf8')) as { version?: number; entries?: ProbeCache };
    return raw.version === VERSION && raw.entries ? raw.entries : {};
  } catch {
    return {};
  }
}

/** Best effort: a home that is not writable (or not animus's) simply gets no cache. */
export async function saveProbeCache(home: string, entries: ProbeCache): Promise<void> {
  try {
    if (!(await pathExists(homeLayout(home).stateDir))) return;
    await writeFileAtomic(cachePath(home), JSON.stringify({ version: VERSION, entries }));
  } catch {
    // Nothing to do: the next run probes again.
  }
}

/** The identity of a database and its WAL; undefined when the database cannot be stat'ed. */
export function databaseKey(db: string): string | undefined {
  const main = statSync(db, { bigint: true, throwIfNoEntry: false });
  if (!main) return undefined;
  const wal = statSync(`${db}-wal`, { bigint: true, throwIfNoEntry: false });
  // The WAL's ctime moves each time SQLite opens the database, even read-only: its size and mtime carry the
  // writes. An empty WAL (which opening may create) holds nothing: the same as none.
  return `${main.dev}:${main.ino}:${main.size}:${main.mtimeNs}:${main.ctimeNs}|${wal && wal.size > 0n ? `${wal.ino}:${wal.size}:${wal.mtimeNs}` : '-'}`;
}
