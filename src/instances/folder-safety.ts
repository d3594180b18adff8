import { agentFileProblem, statAgentPath } from '../core/agent-fs.js';
import { ENV_FILE, LOGS_DIR, SETTINGS_FILE, type AgentPaths } from '../home/layout.js';
import { agentDbProblem } from './db-path.js';

/**
 * What `list` and `health` report about the files animus opens in an agent folder: the
 * folder itself, `.env`, `settings.json`, the database (and its -wal/-shm), `logs/` and
 * its two logs, each a symlink or not a regular file (core/agent-fs refuses to open them).
 * Each problem is one line; an empty list is a folder animus can use.
 */
export function folderSafetyProblems(paths: AgentPaths): string[] {
  // The folder itself: a link out of the home is this module's concern; a plain file there is the caller's "not a folder".
  const self = statAgentPath(paths.dir, '.');
  if (self.kind === 'symlink') return [agentFileProblem(paths.dir, '.', 'dir')!];
  if (self.kind !== 'dir') return [];
  const problems = [
    agentFileProblem(paths.dir, ENV_FILE),
    agentFileProblem(paths.dir, SETTINGS_FILE),
    agentFileProblem(paths.dir, LOGS_DIR, 'dir'),
  ];
  if (!problems[2]) problems.push(agentFileProblem(paths.dir, `${LOGS_DIR}/runtime.log`), agentFileProblem(paths.dir, `${LOGS_DIR}/runtime.err.log`));
  // A link as .env is reported once, not again as the reason the database path is unknown.
  if (!problems[0]) problems.push(agentDbProblem(paths));
  return problems.filter((p): p is string => p !== undefined).map((p) => p.replace(`${paths.dir}/`, ''));
}
