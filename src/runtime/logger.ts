import { redactText } from '../core/redact.js';
import { isoTime } from '../core/time.js';

/**
 * One JSON object per line on stdout, where the process manager points it (the
 * agent's logs/): `{"time","level","agent","item"?,"msg",...}`. Every line passes
 * through redaction of the agent's secret values, so a key or bot token echoed
 * inside a library's error message (a URL with the token in it) never reaches a log.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown> & { item?: number };

export interface Logger {
  level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  agent: string;
  level: LogLevel;
  secrets: readonly string[];
  write?: (line: string) => void;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const secrets = [...options.secrets].filter((s) => s.length >= 6).sort((a, b) => b.length - a.length);
  const logger: Logger = {
    level: options.level,
    enabled: (level) => RANK[level] >= RANK[logger.level],
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
  function emit(level: LogLevel, msg: string, fields?: LogFields): void {
    if (RANK[level] < RANK[logger.level]) return;
    const record = { time: isoTime(), level, agent: options.agent, ...fields, msg };
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, agent: options.agent, msg });
    }
    write(`${secrets.length > 0 ? redactText(line, secrets) : line}\n`);
  }
  return logger;
}

export function parseLogLevel(value: string | undefined): LogLevel | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const lower = value.trim().toLowerCase();
  if (lower === 'warning') return 'warn';
  if (lower === 'critical' || lower === 'fatal') return 'error';
  return (LOG_LEVELS as readonly string[]).includes(lower) ? (lower as LogLevel) : undefined;
}

/** Error text for logs: the first line of the message, no stack. */
export function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const first = text.split('\n').find((line) => line.trim() !== '')?.trim() ?? 'unknown error';
  return first.length > 500 ? `${first.slice(0, 497)}...` : first;
}
