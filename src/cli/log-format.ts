import type { Style } from './output.js';
import { AnimusError } from '../core/errors.js';
import { LOG_LEVELS, type LogFilter, type LogLevel } from '../process/logs.js';

/**
 * How `animus logs` shows the runtime's JSON lines to a person: time, level in colour,
 * item id, message, then the other fields compact (`key=value`). A line that is not
 * JSON (stderr, a crash) is shown as it is.
 */
const SHOWN = new Set(['time', 'level', 'agent', 'item', 'msg']);

export function prettyLine(line: string, style: Style, prefix = ''): string {
  let record: Record<string, unknown> | undefined;
  if (line.startsWith('{')) {
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch {
      record = undefined;
    }
  }
  if (!record || typeof record.msg !== 'string') return `${prefix}${line}`;
  const time = typeof record.time === 'string' ? record.time.replace('T', ' ').replace(/Z$/, '') : '';
  const level = typeof record.level === 'string' ? record.level : 'info';
  const item = record.item !== undefined ? style.cyan(`#${String(record.item)}`) : '';
  const rest = Object.entries(record)
    .filter(([key]) => !SHOWN.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? (/[\s"=]/.test(value) ? JSON.stringify(value) : value) : JSON.stringify(value)}`)
    .join(' ');
  return [prefix + style.dim(time), colourLevel(level, style), item, record.msg, rest ? style.dim(rest) : ''].filter((part) => part !== '').join(' ');
}

function colourLevel(level: string, style: Style): string {
  const label = level.toUpperCase().padEnd(5);
  if (level === 'error' || level === 'fatal') return style.red(label);
  if (level === 'warn' || level === 'warning') return style.yellow(label);
  if (level === 'debug') return style.dim(label);
  return style.green(label);
}

export interface RawLogOptions {
  level?: string;
  grep?: string;
  since?: string;
}

/** The edge for --level, --grep and --since. */
export function normalizeLogFilter(raw: RawLogOptions, now = Date.now()): LogFilter {
  const filter: LogFilter = {};
  if (raw.level !== undefined) {
    const level = raw.level.toLowerCase() === 'warning' ? 'warn' : raw.level.toLowerCase();
    if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new AnimusError('EUSAGE', `invalid value "${raw.level}" for --level: expected one of ${LOG_LEVELS.join(', ')}`);
    filter.level = level as LogLevel;
  }
  if (raw.grep !== undefined) {
    if (raw.grep === '') throw new AnimusError('EUSAGE', '--grep needs a text to look for');
    filter.grep = raw.grep;
  }
  if (raw.since !== undefined) filter.since = parseSince(raw.since, now);
  return filter;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseSince(text: string, now: number): number {
  const duration = /^(\d+(?:\.\d+)?)\s*([smhd])$/.exec(text.trim());
  if (duration) return now - Number(duration[1]) * UNITS[duration[2]!]!;
  const time = Date.parse(text);
  if (!Number.isNaN(time)) return time;
  throw new AnimusError('EUSAGE', `invalid value "${text}" for --since: expected a duration (30s, 10m, 2h, 1d) or a time (2026-12-01T08:00:00Z)`);
}
