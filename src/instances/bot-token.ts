import { agentPaths, type AgentPaths } from '../home/layout.js';
import { runningRuntimePid } from '../runtime/lock.js';
import { readEnv, readSettings } from './agent-files.js';
import { scanAgentFolders } from './registry.js';

/**
 * Two runtimes polling one bot token split its chats' messages between them (Telegram
 * hands each update to whichever poll asks first, and ends the other with 409). A
 * runtime can only see its own folder, so the CLI, which sees the home, refuses to
 * start an agent whose bot token another agent of the home already polls.
 */
async function botToken(paths: AgentPaths): Promise<string | undefined> {
  try {
    const settings = await readSettings(paths);
    if (!settings.plugins.telegram_bot.enabled) return undefined;
    const token = (await readEnv(paths)).TELEGRAM_BOT_TOKEN?.trim();
    return token ? token : undefined;
  } catch {
    // An agent whose files cannot be read does not poll: its own start reports why.
    return undefined;
  }
}

/** For each agent about to start whose token is taken: one line naming the agent that has it. */
export async function botTokenConflicts(home: string, starting: AgentPaths[]): Promise<Map<string, string>> {
  const conflicts = new Map<string, string>();
  const tokens = new Map<string, string>();
  for (const paths of starting) {
    const token = await botToken(paths);
    if (token) tokens.set(paths.agent.id, token);
  }
  if (tokens.size === 0) return conflicts;
  const startingIds = new Set(starting.map((p) => p.agent.id));
  /** Token → an agent of the home that polls it now, or is started first in this same command. */
  const holders = new Map<string, string>();
  for (const folder of await scanAgentFolders(home)) {
    if (!folder.agent || startingIds.has(folder.agent.id)) continue;
    const paths = agentPaths(home, folder.agent);
    const pid = runningRuntimePid(paths.dir);
    if (pid === undefined) continue;
    const token = await botToken(paths);
    if (token && [...tokens.values()].includes(token)) holders.set(token, `${folder.agent.id} (running, pid ${pid})`);
  }
  for (const paths of starting) {
    const token = tokens.get(paths.agent.id);
    if (!token) continue;
    const holder = holders.get(token);
    if (holder) {
      conflicts.set(paths.agent.id, `${holder} already polls Telegram with this TELEGRAM_BOT_TOKEN, and two pollers split the chats' messages between them: stop it, or give ${paths.agent.id} a bot token of its own`);
    } else holders.set(token, `${paths.agent.id} (started by this command)`);
  }
  return conflicts;
}
