import { closeSync, constants, existsSync, fchmodSync, fstatSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAgentDir, openAgentFileSync, readAgentText } from '../core/agent-fs.js';
import { AnimusError } from '../core/errors.js';
import { mkdir } from 'node:fs/promises';
import { DIR_MODE, SECRET_FILE_MODE } from '../core/fs.js';
import { homeLayout, LOGS_DIR, type AgentPaths } from '../home/layout.js';

/**
 * The audit trail: one JSON line per command that changed something, appended to the
 * home's `.animus/audit.log` (naming every agent the command touched) and to the log of
 * each agent it touched (`<agent>/logs/audit.log`, naming that agent; it travels with
 * the agent's backups). Both are 0600;
 * the agent's is opened through core/agent-fs (no link followed out of the folder).
 * Appends of one line each, O_APPEND: two commands at once interleave whole lines.
 */

export interface AuditRecord {
  time: string;
  user: string;
  pid: number;
  command: string;
  /** The arguments as typed, secrets replaced by [REDACTED]. */
  args: string[];
  /** The agents the command named (every agent of the home for --all). */
  agents: string[];
  outcome: 'ok' | 'failed' | 'interrupted';
  exitCode: number;
  /** The one-line error of a failed command. */
  error?: string;
}

export const AUDIT_FILE = 'audit.log';

export function homeAuditLog(home: string): string {
  return join(homeLayout(home).stateDir, AUDIT_FILE);
}

/**
 * Appends the record to the home's log and each agent's. Never throws: a command's
 * outcome is not changed by its record; what could not be written is returned.
 */
export async function appendAudit(home: string, record: AuditRecord, agents: AgentPaths[]): Promise<string[]> {
  const line = `${JSON.stringify(record)}\n`;
  // An agent's own trail names that agent only: a fleet command over a thousand agents
  // would otherwise append the thousand ids to each of the thousand trails (45 KB each,
  // archived with every backup). The home's trail lists them all.
  const own = (paths: AgentPaths) => (record.agents.length > 1 ? `${JSON.stringify({ ...record, agents: [paths.agent.id] })}\n` : line);
  const problems: string[] = [];
  /** The home's trail refused us for lack of rights (see below). */
  let homeDenied: string | undefined;
  let agentWritten = false;
  // A home that is not there is not made by its audit record.
  if (isFolder(home)) {
    try {
      // Made 0700 when missing, never chmod'ed after: `systemd install --run-as` opens it to
      // the agents' account (0750), and a record written by root must not close it again.
      await mkdir(homeLayout(home).stateDir, { recursive: true, mode: DIR_MODE });
      appendPlain(homeAuditLog(home), line);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM') homeDenied = `${homeAuditLog(home)}: ${(error as Error).message}`;
      else problems.push(`${homeAuditLog(home)}: ${(error as Error).message}`);
    }
  }
  for (const paths of agents) {
    if (!existsSync(paths.dir)) continue;
    try {
      ensureAgentDir(paths.dir, LOGS_DIR);
      const fd = openAgentFileSync(paths.dir, `${LOGS_DIR}/${AUDIT_FILE}`, { flags: 'a', mode: SECRET_FILE_MODE, singleLink: true })!;
      try {
        writeSync(fd, own(paths));
        agentWritten = true;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      problems.push(`${paths.dir}/${LOGS_DIR}/${AUDIT_FILE}: ${(error as Error).message}`);
    }
  }
  // The account a systemd agent runs as may not write the home's trail (root's, 0600); its
  // record is in the agent's own log then, which is the one that says what it did.
  if (homeDenied && !agentWritten) problems.push(homeDenied);
  return problems;
}

function isFolder(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false; // ENOTDIR: a file on the way
  }
}

function appendPlain(path: string, line: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW, SECRET_FILE_MODE);
  try {
    if (!fstatSync(fd).isFile()) throw new Error('not a regular file');
    fchmodSync(fd, SECRET_FILE_MODE);
    writeSync(fd, line);
  } finally {
    closeSync(fd);
  }
}

export interface AuditQuery {
  /** Read this agent's own log instead of the home's. */
  agent?: AgentPaths;
  since?: Date;
}

export interface AuditRead {
  file: string;
  records: AuditRecord[];
  /** Lines that were not records (a torn write, an edit by hand). */
  skipped: number;
}

export function readAudit(home: string, query: AuditQuery = {}): AuditRead {
  const file = query.agent ? `${query.agent.logs}/${AUDIT_FILE}` : homeAuditLog(home);
  let text: string | undefined;
  try {
    text = query.agent ? readAgentText(query.agent.dir, `${LOGS_DIR}/${AUDIT_FILE}`) : existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EIO', `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  const records: AuditRecord[] = [];
  let skipped = 0;
  const since = query.since?.getTime();
  for (const line of (text ?? '').split('\n')) {
    if (line.trim() === '') continue;
    let record: AuditRecord;
    try {
      record = JSON.parse(line) as AuditRecord;
      if (typeof record.time !== 'string' || typeof record.command !== 'string') throw new Error('not a record');
    } catch {
      skipped++;
      continue;
    }
    if (since !== undefined && !(Date.parse(record.time) >= since)) continue;
    records.push(record);
  }
  return { file, records, skipped };
}

/** `--since`: an ISO time, or an age such as 30m, 12h, 7d. */
export function parseSince(raw: string, now = Date.now()): Date {
  const age = /^(\d+)\s*([smhd])$/.exec(raw.trim());
  if (age) return new Date(now - Number(age[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd']);
  const time = Date.parse(raw);
  if (raw.trim() === '' || Number.isNaN(time)) throw new AnimusError('EUSAGE', `--since "${raw}" is not a time: pass an ISO time (2026-12-01T06:00:00Z) or an age (30m, 12h, 7d)`);
  return new Date(time);
}
