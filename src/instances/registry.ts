import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { agentIdFromFolderName, parseAgentId, type AgentId } from '../core/agent-id.js';
import { AnimusError, describeError } from '../core/errors.js';
import { isDirectory, pathExists } from '../core/fs.js';
import type { MessageMode, ProcessManagerName, Settings } from '../config/settings.js';
import { readCloneCommit } from '../git/refs.js';
import { agentPaths, CLONE_DIR, LEGACY_CLONE_DIR, type AgentPaths } from '../home/layout.js';
import { readSettings } from './agent-files.js';
import { folderSafetyProblems } from './folder-safety.js';

export interface AgentEntry {
  id: string;
  dir: string;
  name?: string;
  mode?: MessageMode;
  processManager?: ProcessManagerName;
  /** The runtime commit checked out in the agent's clone. */
  commit?: string;
  /** Process state, where a process manager was asked (filled in by the commands that do). */
  state?: string;
  /** Empty for a healthy folder; otherwise what keeps animus from managing it. */
  problems: string[];
}

/** Folders directly in the home that look like agents: `agent-*` (valid or not). */
export async function scanAgentFolders(home: string): Promise<Array<{ name: string; agent?: AgentId }>> {
  let names: string[];
  try {
    names = await readdir(home);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AnimusError('EIO', `cannot read the home ${home}: ${describeError(error)}`, { cause: error });
  }
  return names
    .filter((name) => name.startsWith('agent-'))
    .sort()
    .map((name) => ({ name, agent: agentIdFromFolderName(name) }));
}

/** Every agent folder with what can be read cheaply (no git or process-manager calls). */
export async function listAgents(home: string): Promise<AgentEntry[]> {
  const folders = await scanAgentFolders(home);
  return Promise.all(folders.map(({ name, agent }) => (agent ? describeAgent(home, agent) : invalidFolder(home, name))));
}

async function invalidFolder(home: string, name: string): Promise<AgentEntry> {
  return { id: name, dir: join(home, name), problems: ['folder name is not agent-<uuid>: rename it to the Letta agent id or move it out of the home'] };
}

export async function describeAgent(home: string, agent: AgentId): Promise<AgentEntry> {
  const paths = agentPaths(home, agent);
  const entry: AgentEntry = { id: agent.id, dir: paths.dir, problems: [] };
  // A link (the folder itself, .env, settings.json, the database, logs/) is a problem, never followed.
  entry.problems.push(...folderSafetyProblems(paths));
  if (entry.problems.length > 0 && entry.problems[0]!.startsWith(paths.dir)) return entry;
  if (!(await isDirectory(paths.dir))) {
    entry.problems.push('not a folder');
    return entry;
  }
  let settings: Settings | undefined;
  try {
    settings = await readSettings(paths);
  } catch (error) {
    const problem = describeError(error).replace(`${paths.settings}`, 'settings.json');
    if (!entry.problems.some((p) => problem.startsWith(p.split(' ')[0]!))) entry.problems.push(problem);
  }
  if (settings) {
    entry.name = settings.agent.name;
    entry.mode = settings.message_mode;
    entry.processManager = settings.process_manager;
    if (settings.agent.id !== agent.id) entry.problems.push(`settings.json names ${settings.agent.id}, not ${agent.id}`);
  }
  const clone = await cloneDir(paths);
  if (clone) entry.commit = readCloneCommit(clone);
  if (!clone || !entry.commit) entry.problems.push(`no runtime clone in ${CLONE_DIR}/`);
  if (!(await pathExists(paths.env))) entry.problems.push('.env is missing');
  if (!(await pathExists(paths.db))) entry.problems.push('animus.db is missing');
  return entry;
}

/** The agent's clone: `runtime/` for animus, `broca/` for a folder made after the guide. */
export async function cloneDir(paths: AgentPaths): Promise<string | undefined> {
  if (await pathExists(join(paths.clone, '.git'))) return paths.clone;
  const legacy = join(paths.dir, LEGACY_CLONE_DIR);
  if (await pathExists(join(legacy, '.git'))) return legacy;
  return undefined;
}

/** Resolves a user-given id to an existing agent folder, or says how to find the right one. */
export async function requireAgent(home: string, id: string): Promise<AgentPaths> {
  const agent = parseAgentId(id);
  const paths = agentPaths(home, agent);
  try {
    if ((await stat(paths.dir)).isDirectory()) return paths;
  } catch {
    // Fall through.
  }
  throw new AnimusError('ENOAGENT', `no agent ${agent.id} in ${home}: run \`animus list\` to see the agents, or deploy it`);
}
