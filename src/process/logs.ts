import { execa } from 'execa';
import { userInfo } from 'node:os';
import { basename } from 'node:path';
import type { ProcessManagerName } from '../config/settings.js';
import { AnimusError } from '../core/errors.js';
import { redactText } from '../core/redact.js';
import type { AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { requireAgent } from '../instances/registry.js';
import { agentSecrets, followFiles, tailLines } from './log-tail.js';
import { detectScope, instanceUnit } from './systemd-units.js';

export interface AgentLogs {
  id: string;
  manager: ProcessManagerName;
  /** file: the agent's logs/ (PM2, or systemd with log_target file); journal: systemd's journal. */
  target: 'file' | 'journal';
  /** `end`: the size a log file was read up to, where --follow continues. */
  sources: Array<{ name: string; path?: string; lines: string[]; end?: number }>;
}

/** The last `count` lines of an agent's log, wherever its manager writes it; secrets masked. */
export async function readAgentLogs(home: string, id: string, count: number, env: NodeJS.ProcessEnv = process.env): Promise<AgentLogs> {
  const paths = await requireAgent(home, id);
  const settings = await readSettings(paths).catch(() => undefined);
  const manager = settings?.process_manager ?? 'pm2';
  const secrets = await agentSecrets(paths);
  if (manager === 'systemd' && settings?.log_target === 'journal') {
    const lines = await journal(home, paths, ['-n', String(count)], env);
    return { id: paths.agent.id, manager, target: 'journal', sources: [{ name: instanceUnit(home, paths.agent.uuid), lines: lines.map((l) => redactText(l, secrets)) }] };
  }
  const sources = await Promise.all(
    [paths.outLog, paths.errLog].map(async (path) => {
      const tail = await tailLines(path, count);
      return { name: basename(path), path, lines: tail.lines.map((l) => redactText(l, secrets)), end: tail.end };
    }),
  );
  return { id: paths.agent.id, manager, target: 'file', sources };
}

/** Prints what is appended to the agent's log until the signal aborts (Ctrl-C). */
export async function followAgentLogs(home: string, logs: AgentLogs, write: (text: string) => void, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (logs.target === 'journal') {
    await execa('journalctl', [...scopeFlag(env, home), '-u', logs.sources[0]!.name, '-n', '0', '-f', '-o', 'cat'], { stdout: 'inherit', stderr: 'inherit', cancelSignal: signal, reject: false });
    return;
  }
  const secrets = await agentSecrets(await requireAgent(home, logs.id));
  const files = logs.sources.flatMap((s) => (s.path ? [s.path] : []));
  // From where the tail ended: a line written in between is printed, not skipped.
  const from = new Map(logs.sources.flatMap((s) => (s.path && s.end !== undefined ? [[s.path, s.end] as const] : [])));
  await followFiles(files, (_path, text) => write(redactText(text, secrets)), signal, from);
}

async function journal(home: string, paths: AgentPaths, args: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
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
