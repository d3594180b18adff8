import { loadExeca } from '../core/execa.js';
import { userInfo } from 'node:os';
import { basename } from 'node:path';
import type { ProcessManagerName } from '../config/settings.js';
import { AnimusError } from '../core/errors.js';
import { redactText } from '../core/redact.js';
import { agentPaths, type AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { requireAgent, scanAgentFolders } from '../instances/registry.js';
import { agentSecrets, followFiles, rotatedLines, tailLines } from './log-tail.js';
import { detectScope, instanceUnit } from './systemd-units.js';

export interface AgentLogs {
  id: string;
  manager: ProcessManagerName;
  /** file: the agent's logs/ (PM2, or systemd with log_target file); journal: systemd's journal. */
  target: 'file' | 'journal';
  /** `end`: the size a log file was read up to, where --follow continues. */
  sources: Array<{ name: string; path?: string; lines: string[]; end?: number }>;
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Which lines to show; every field optional. Normalized by the CLI. */
export interface LogFilter {
  level?: LogLevel;
  grep?: string;
  /** ms since epoch. */
  since?: number;
}

/** One line with what is known about it: JSON lines carry their time and level; other lines (stderr) do not. */
export interface LogRecord {
  time?: string;
  level?: string;
  source: string;
  line: string;
}

const RANK: Record<string, number> = { debug: 10, info: 20, warn: 30, warning: 30, error: 40, fatal: 50 };

export function parseLogLine(line: string, source: string): LogRecord {
  if (line.startsWith('{')) {
    try {
      const record = JSON.parse(line) as { time?: unknown; level?: unknown };
      return { source, line, ...(typeof record.time === 'string' ? { time: record.time } : {}), ...(typeof record.level === 'string' ? { level: record.level } : {}) };
    } catch {
      // Not JSON after all: a plain line.
    }
  }
  // stderr holds start-up errors and crashes: they count as errors.
  return { source, line, ...(source.endsWith('.err.log') ? { level: 'error' } : {}) };
}

/** Lines without a time are kept by --since (nothing says they are older); lines without a level count as info. */
export function matches(record: LogRecord, filter: LogFilter): boolean {
  if (filter.level && (RANK[record.level ?? 'info'] ?? RANK.info!) < RANK[filter.level]!) return false;
  if (filter.since !== undefined && record.time !== undefined && Date.parse(record.time) < filter.since) return false;
  if (filter.grep !== undefined && !record.line.toLowerCase().includes(filter.grep.toLowerCase())) return false;
  return true;
}

function filtering(filter: LogFilter): boolean {
  return filter.level !== undefined || filter.grep !== undefined || filter.since !== undefined;
}

/** The last `count` lines of an agent's log (matching the filter), wherever its manager writes it; secrets masked. */
export async function readAgentLogs(home: string, id: string, count: number, env: NodeJS.ProcessEnv = process.env, filter: LogFilter = {}): Promise<AgentLogs> {
  return readLogsOf(home, await requireAgent(home, id), count, env, filter);
}

async function readLogsOf(home: string, paths: AgentPaths, count: number, env: NodeJS.ProcessEnv, filter: LogFilter): Promise<AgentLogs> {
  const settings = await readSettings(paths).catch((error: unknown) => {
    // A settings.json that is a link is refused here too, not only when the log is read.
    if (error instanceof AnimusError && error.code === 'EUNSAFEPATH') throw error;
    return undefined;
  });
  const manager = settings?.process_manager ?? 'pm2';
  const secrets = await agentSecrets(paths);
  const keep = (lines: string[], source: string) => (filtering(filter) ? lines.filter((l) => matches(parseLogLine(l, source), filter)) : lines);
  const select = (lines: string[], source: string) => keep(lines, source).slice(-count).map((l) => redactText(l, secrets));
  if (manager === 'systemd' && settings?.log_target === 'journal') {
    const unit = instanceUnit(home, paths.agent.uuid);
    const lines = await journal(home, paths, filtering(filter) ? [...(filter.since ? ['--since', `@${Math.floor(filter.since / 1000)}`] : []), '-n', 'all'] : ['-n', String(count)], env);
    return { id: paths.agent.id, manager, target: 'journal', sources: [{ name: unit, lines: select(lines, unit) }] };
  }
  const sources = await Promise.all(
    [paths.outLog, paths.errLog].map(async (path) => {
      // Filters need every line of the current file (bounded by log_max_mb).
      const tail = await tailLines(paths, path, filtering(filter) ? Infinity : count);
      const name = basename(path);
      let lines = tail.lines;
      // The runtime's log rotates: fewer lines than asked for go on into its rotated files, newest first.
      if (path === paths.outLog) {
        let kept = keep(lines, name).length;
        let older = reachesBack(lines, filter.since);
        for await (const rotated of rotatedLines(paths, path, settings?.log_keep ?? 5)) {
          if (kept >= count || older) break;
          lines = [...rotated, ...lines];
          kept += keep(rotated, name).length;
          older = reachesBack(rotated, filter.since);
        }
      }
      return { name, path, lines: select(lines, name), end: tail.end };
    }),
  );
  return { id: paths.agent.id, manager, target: 'file', sources };
}

/** The lines start before `since`: a file rotated earlier holds only older ones. */
function reachesBack(lines: string[], since: number | undefined): boolean {
  if (since === undefined) return false;
  const first = lines.find((l) => parseLogLine(l, '').time !== undefined);
  return first !== undefined && Date.parse(parseLogLine(first, '').time!) < since;
}

export interface FleetLogLine extends LogRecord {
  /** The agent's id; `short`: its first 8 hex digits, what the pretty output shows. */
  agent: string;
  short: string;
}

export interface FleetLogs {
  agents: AgentLogs[];
  /** Every agent's lines, interleaved by time (a line without one stays after its predecessor, or goes last), the last `count`. */
  lines: FleetLogLine[];
  /** Agents whose log could not be read, with why (a link refused, the journal unreadable). */
  failed: Array<{ id: string; code: string; message: string }>;
}

/** `animus logs --all`: the whole fleet's log, interleaved by time. */
export async function readFleetLogs(home: string, count: number, env: NodeJS.ProcessEnv = process.env, filter: LogFilter = {}): Promise<FleetLogs> {
  const folders = (await scanAgentFolders(home)).flatMap((f) => (f.agent ? [f.agent] : []));
  const agents: AgentLogs[] = [];
  const failed: FleetLogs['failed'] = [];
  for (const agent of folders) {
    try {
      agents.push(await readLogsOf(home, agentPaths(home, agent), count, env, filter));
    } catch (error) {
      failed.push({ id: agent.id, code: error instanceof AnimusError ? error.code : 'EIO', message: error instanceof Error ? error.message : String(error) });
    }
  }
  const lines: FleetLogLine[] = [];
  for (const logs of agents) {
    const short = logs.id.slice('agent-'.length, 'agent-'.length + 8);
    for (const source of logs.sources) {
      let last = '';
      for (const line of source.lines) {
        const record = parseLogLine(line, source.name);
        // A line without a time sorts with the line before it.
        last = record.time ?? last;
        lines.push({ ...record, time: record.time ?? (last || undefined), agent: logs.id, short });
      }
    }
  }
  const stable = lines.map((line, index) => ({ line, index }));
  // Lines with no time at all (stderr before any JSON line) go last.
  stable.sort((a, b) => (a.line.time ?? '\uffff').localeCompare(b.line.time ?? '\uffff') || a.index - b.index);
  return { agents, lines: stable.map((s) => s.line).slice(-count), failed };
}

/** Prints what is appended to the agent's log (matching the filter) until the signal aborts (Ctrl-C). */
export async function followAgentLogs(home: string, logs: AgentLogs, write: (text: string, source: string) => void, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env, filter: LogFilter = {}): Promise<void> {
  if (logs.target === 'journal') {
    const execa = await loadExeca();
    await execa('journalctl', [...scopeFlag(env, home), '-u', logs.sources[0]!.name, '-n', '0', '-f', '-o', 'cat'], { stdout: 'inherit', stderr: 'inherit', cancelSignal: signal, reject: false });
    return;
  }
  const paths = await requireAgent(home, logs.id);
  const secrets = await agentSecrets(paths);
  const files = logs.sources.flatMap((s) => (s.path ? [s.path] : []));
  // From where the tail ended: a line written in between is printed, not skipped.
  const from = new Map(logs.sources.flatMap((s) => (s.path && s.end !== undefined ? [[s.path, s.end] as const] : [])));
  const partial = new Map<string, string>();
  await followFiles(
    paths,
    files,
    (path, text) => {
      // Whole lines only, so that filters and the pretty printer see each line once.
      const lines = ((partial.get(path) ?? '') + text).split('\n');
      partial.set(path, lines.pop() ?? '');
      const source = basename(path);
      for (const line of lines) if (matches(parseLogLine(line, source), filter)) write(`${redactText(line, secrets)}\n`, source);
    },
    signal,
    from,
  );
}

async function journal(home: string, paths: AgentPaths, args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const execa = await loadExeca();
  const result = await execa('journalctl', [...scopeFlag(env, home), '-u', instanceUnit(home, paths.agent.uuid), ...args, '-o', 'cat', '--no-pager'], { reject: false });
  const lines = result.stdout.split('\n').filter((l) => l !== '');
  // journalctl exits 0 with nothing when it may not read the system journal: say which group opens it.
  if (lines.length === 0 && /insufficient permissions|not seeing messages from other users/i.test(result.stderr)) {
    const user = userInfo().username;
    throw new AnimusError('EPM', `${user} may not read the system journal, where ${paths.agent.id} logs: add it to the systemd-journal group (sudo usermod -aG systemd-journal ${user}, then log in again), or run animus logs with sudo`);
  }
  if (result.exitCode !== 0) {
    throw new AnimusError('ENOSYSTEMD', `cannot read the journal of ${paths.agent.id} (${(result.stderr || `exit ${result.exitCode}`).split('\n')[0]}): is systemd running here?`);
  }
  return lines;
}

function scopeFlag(env: NodeJS.ProcessEnv, home: string): string[] {
  return detectScope(env, home) === 'user' ? ['--user'] : [];
}
