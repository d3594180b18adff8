import type { StatusWithMetrics } from '../metrics/status.js';
import type { Column, Output } from './output.js';
import { formatBytes, formatCount, formatDuration, formatLatency } from './format.js';

/**
 * The table of `animus status` and `animus top`. The default columns are the ones an
 * operator scans and fit 100 columns (ids shortened as git shortens hashes);
 * `--wide` adds the rest. A number the agent's database does not keep prints `-`.
 */

/** The shortest prefix of each uuid (at least 8 characters) that no other agent of the list shares. */
export function shortIds(ids: readonly string[]): Map<string, string> {
  const uuids = ids.map((id) => id.replace(/^agent-/, ''));
  const result = new Map<string, string>();
  ids.forEach((id, i) => {
    const uuid = uuids[i]!;
    let length = 8;
    while (length < uuid.length && uuids.some((other, j) => j !== i && other.startsWith(uuid.slice(0, length)))) length++;
    result.set(id, uuid.slice(0, length));
  });
  return result;
}

const ABSENT = '-';

/** Agent-request failures plus delivery failures in the last 24 h; null when the database keeps neither. */
export function failures24h(row: StatusWithMetrics): number | null {
  const w = row.metrics?.windows['24h'];
  if (!w || (w.requests === null && w.deliveryFailures === null)) return null;
  return (w.requests?.failures ?? 0) + (w.deliveryFailures ?? 0);
}

/** Items waiting or being processed. */
export function queueDepth(row: StatusWithMetrics): number | null {
  const q = row.metrics?.queue;
  return q ? q.pending + q.processing : null;
}

export interface SortKey {
  name: string;
  value: (row: StatusWithMetrics) => number | string | null;
  /** Text sorts A to Z; numbers largest first. */
  text?: boolean;
}

/** What `top` can sort by (s cycles through them). Numbers sort largest first. */
export const SORT_KEYS: readonly SortKey[] = [
  { name: 'agent', value: (r) => r.id, text: true },
  { name: 'state', value: (r) => r.state, text: true },
  { name: 'p50', value: (r) => r.metrics?.windows['24h'].latencyMs?.p50 ?? null },
  { name: 'msgs/24h', value: (r) => r.metrics?.windows['24h'].messagesIn ?? null },
  { name: 'fail/24h', value: failures24h },
  { name: 'queue', value: queueDepth },
  { name: 'tokens/24h', value: (r) => r.metrics?.windows['24h'].tokens?.total ?? null },
  { name: 'memory', value: (r) => r.memoryBytes ?? null },
  { name: 'cpu', value: (r) => r.cpuPercent ?? null },
];

export function sortRows(rows: StatusWithMetrics[], key: SortKey, reverse: boolean): StatusWithMetrics[] {
  const sorted = [...rows].sort((a, b) => {
    const x = key.value(a);
    const y = key.value(b);
    if (x === y) return a.id.localeCompare(b.id);
    if (x === null) return 1;
    if (y === null) return -1;
    return key.text ? String(x).localeCompare(String(y)) : Number(y) - Number(x);
  });
  return reverse ? sorted.reverse() : sorted;
}

export function statusColumns(out: Output, rows: readonly StatusWithMetrics[], wide: boolean): Column<StatusWithMetrics>[] {
  const short = shortIds(rows.map((r) => r.id));
  const num = (value: number | null | undefined, format: (n: number) => string = formatCount) => (value === null || value === undefined ? ABSENT : format(value));
  const p = (q: 'p50' | 'p95' | 'p99') => (r: StatusWithMetrics) => {
    const latency = r.metrics?.windows['24h'].latencyMs;
    return latency ? num(latency[q], formatLatency) : ABSENT;
  };
  const columns: Column<StatusWithMetrics>[] = [
    { header: 'AGENT', value: (r) => (wide ? r.id : short.get(r.id)!) },
    { header: 'NAME', value: (r) => truncate(r.name, wide ? 24 : 12) },
    ...(wide ? [{ header: 'PM', value: (r: StatusWithMetrics) => r.manager ?? '' }] : []),
    { header: 'STATE', value: (r) => colourState(out, r.state) },
    ...(wide ? [{ header: 'PID', value: (r: StatusWithMetrics) => (r.pid ? String(r.pid) : ''), align: 'right' as const }] : []),
    { header: 'UPTIME', value: (r) => (r.uptimeMs === undefined ? '' : formatDuration(r.uptimeMs)), align: 'right' },
    { header: 'P50', value: p('p50'), align: 'right' },
    ...(wide ? [{ header: 'P95', value: p('p95'), align: 'right' as const }, { header: 'P99', value: p('p99'), align: 'right' as const }] : []),
    { header: 'MSGS/24H', value: (r) => num(r.metrics?.windows['24h'].messagesIn), align: 'right' },
    ...(wide ? [{ header: 'OUT/24H', value: (r: StatusWithMetrics) => num(r.metrics?.windows['24h'].messagesOut), align: 'right' as const }] : []),
    { header: 'FAIL/24H', value: (r) => colourCount(out, failures24h(r)), align: 'right' },
    ...(wide ? [{ header: 'RETRY/24H', value: (r: StatusWithMetrics) => num(r.metrics?.windows['24h'].requests?.retries), align: 'right' as const }] : []),
    { header: 'QUEUE', value: (r) => num(queueDepth(r)), align: 'right' },
    ...(wide ? [{ header: 'OLDEST', value: (r: StatusWithMetrics) => num(r.metrics?.queue.oldestPendingAgeS, (s) => formatDuration(s * 1000)), align: 'right' as const }] : []),
    { header: 'TOKENS/24H', value: (r) => num(r.metrics?.windows['24h'].tokens?.total), align: 'right' },
  ];
  if (wide) {
    columns.push(
      { header: 'CRASHES', value: (r) => num(r.crashRestarts), align: 'right' },
      { header: 'RESTARTS', value: (r) => num(r.restarts), align: 'right' },
      { header: 'MEMORY', value: (r) => (r.memoryBytes === undefined ? '' : formatBytes(r.memoryBytes)), align: 'right' },
      { header: 'CPU', value: (r) => (r.cpuPercent === undefined ? '' : `${r.cpuPercent}%`), align: 'right' },
    );
  }
  return columns;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

function colourCount(out: Output, n: number | null): string {
  if (n === null) return ABSENT;
  return n > 0 ? out.style.red(formatCount(n)) : formatCount(n);
}

export function colourState(out: Output, state: string): string {
  if (state === 'online') return out.style.green(state);
  if (state === 'errored' || state === 'unknown') return out.style.red(state);
  if (state === 'starting' || state === 'stopping') return out.style.yellow(state);
  return out.style.dim(state);
}
