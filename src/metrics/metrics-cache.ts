import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathExists, writeFileAtomic } from '../core/fs.js';
import { VERSION } from '../core/version.js';
import { homeLayout } from '../home/layout.js';
import type { DatabaseDigest } from './database-metrics.js';

/**
 * What was read from each agent's database, keyed by the identity of the database and
 * its WAL (inode, size, ctime; the WAL's size and mtime: health's databaseKey), so a
 * scrape opens only the databases written since the last one. A digest holds the
 * events of its last 24 h, so the windows are cut afresh at every scrape (see
 * DatabaseDigest). `animus serve` keeps it in memory; the commands keep it in
 * `<home>/.animus/metrics-cache` (the agents' folders are never written).
 */
export class MetricsCache extends Map<string, { key: string; digest: DatabaseDigest }> {
  /** Whether anything was added or forgotten since it was loaded: an unchanged cache is not written again. */
  changed = false;

  override set(id: string, entry: { key: string; digest: DatabaseDigest }): this {
    this.changed = true;
    return super.set(id, entry);
  }

  override delete(id: string): boolean {
    const deleted = super.delete(id);
    if (deleted) this.changed = true;
    return deleted;
  }
}

const HEADER = `animus metrics cache 2 ${VERSION}`;

function cachePath(home: string): string {
  return join(homeLayout(home).stateDir, 'metrics-cache');
}

/** The file: a header line naming the animus version, then `<agent id> <key> <digest json>` per line. */
export function loadMetricsCache(home: string): MetricsCache {
  const cache = new MetricsCache();
  let text: string;
  try {
    text = readFileSync(cachePath(home), 'utf8');
  } catch {
    return cache;
  }
  const lines = text.split('\n');
  if (lines[0] !== HEADER) return cache;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const a = line.indexOf(' ');
    const b = line.indexOf(' ', a + 1);
    if (a <= 0 || b <= a) continue;
    try {
      Map.prototype.set.call(cache, line.slice(0, a), { key: line.slice(a + 1, b), digest: JSON.parse(line.slice(b + 1)) as DatabaseDigest });
    } catch {
      // A damaged line is read again from its database.
    }
  }
  return cache;
}

/** Best effort: a home that is not writable simply gets no cache. Keys hold no spaces (see databaseKey). */
export async function saveMetricsCache(home: string, cache: MetricsCache): Promise<void> {
  try {
    if (!(await pathExists(homeLayout(home).stateDir))) return;
    const lines = [HEADER];
    for (const [id, { key, digest }] of cache) lines.push(`${id} ${key} ${JSON.stringify(digest)}`);
    await writeFileAtomic(cachePath(home), `${lines.join('\n')}\n`);
  } catch {
    // The next run reads the databases again.
  }
}

/** Runs `work` with the home's cache file loaded, and saves what it learned. */
export async function withHomeMetricsCache<T>(home: string, work: (cache: MetricsCache) => Promise<T>): Promise<T> {
  const cache = loadMetricsCache(home);
  const result = await work(cache);
  if (cache.changed) await saveMetricsCache(home, cache);
  return result;
}
