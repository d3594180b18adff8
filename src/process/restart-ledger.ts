import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../core/fs.js';
import { homeLayout } from '../home/layout.js';

/**
 * The restarts animus itself asked a process manager for, so that metrics can tell
 * them from crashes. PM2 counts every restart in one number (`restart_time`: crashes,
 * memory-limit restarts and `pm2 restart` alike), so animus notes each restart it
 * requests of a running process, keyed by the PM2 process's `unique_id` (kept across
 * restarts, stop and start; new when the process is registered again, as PM2's own
 * count resets then; `created_at` would not do: PM2 renews it at every launch).
 * Crash restarts = restart_time − the restarts noted here for that process. systemd
 * needs none of this: its NRestarts counts only the restarts its Restart= policy made.
 *
 * One line per restart in `<home>/.animus/restarts.log` (`<process> <unique_id>`),
 * appended with O_APPEND so two commands never lose each other's line. Best effort:
 * a home without `.animus/` notes nothing, and such restarts count as crashes.
 *
 * Bounded: once the file passes COMPACT_BYTES, a read rewrites it as one line per
 * process (`<process> <unique_id> <count>`), so it grows with the processes ever
 * registered, not with every restart. A note appended during that rewrite can be lost:
 * that restart then counts as a crash (an overcount, as above).
 */
export const COMPACT_BYTES = 256 * 1024;

export function ledgerPath(home: string): string {
  return join(homeLayout(home).stateDir, 'restarts.log');
}

export function noteRequestedRestart(home: string, processName: string, uniqueId: string | undefined): void {
  if (uniqueId === undefined) return;
  try {
    appendFileSync(ledgerPath(home), `${processName} ${uniqueId}\n`, { mode: 0o600 });
  } catch {
    // Without the note the restart is counted as a crash: an overcount, never a lost crash.
  }
}

/** How many restarts animus requested, by `<process> <unique_id>`. */
export function readRequestedRestarts(home: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(ledgerPath(home), 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    // `<process> <unique_id>` for one restart; `<process> <unique_id> <count>` as compacted.
    const parts = line.split(' ');
    const count = parts.length === 3 ? Number(parts[2]) : 1;
    if (!Number.isSafeInteger(count) || count < 1) continue;
    const key = parts.slice(0, 2).join(' ');
    counts.set(key, (counts.get(key) ?? 0) + count);
  }
  if (text.length > COMPACT_BYTES) {
    try {
      writeFileAtomicSync(ledgerPath(home), [...counts].map(([key, n]) => `${key} ${n}\n`).join(''));
    } catch {
      // Left as it is: compacted at a later read.
    }
  }
  return counts;
}
