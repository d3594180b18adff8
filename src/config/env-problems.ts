import type { MessageMode, Settings } from './settings.js';
import { checkEnv, isPlaceholder, type EnvMap } from './env-file.js';

/**
 * What in an agent's .env keeps its runtime from starting: the keys its mode needs,
 * the agent id's shape, and the variables of each enabled plugin. The runtime refuses
 * to start on any of them and `animus health` reports the same list, so what health
 * calls fine is what the runtime accepts. Messages name keys, never secret values.
 */
export interface EnvProblem {
  message: string;
  /** How to fix it when that is not "set it in the .env". */
  fix?: string;
}

const AGENT_ID = /^agent-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Letta refuses other UUID versions with 422: a live agent's id must be a uuid4. */
const AGENT_ID_V4 = /^agent-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function envProblems(env: EnvMap, mode: MessageMode, settings: Settings | undefined, agentId: string): EnvProblem[] {
  const problems: EnvProblem[] = checkEnv(env, mode).map((p) => ({ message: `${p.key} ${p.problem}${p.key === 'AGENT_ID' ? '' : ` (needed in ${mode} mode)`}` }));
  const id = env.AGENT_ID?.trim() ?? '';
  if (id !== '' && !isPlaceholder(id, 'AGENT_ID') && !AGENT_ID.test(id)) problems.push({ message: `AGENT_ID "${id}" is not a Letta agent id (agent-<uuid>)`, fix: 'fix it in the .env' });
  else if (mode === 'live' && AGENT_ID.test(id) && !AGENT_ID_V4.test(id)) {
    problems.push({ message: `AGENT_ID "${id}" is not one Letta accepts: Letta agent ids are uuid4 (agent-xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx)`, fix: 'copy the id from Letta into the .env' });
  }
  const endpoint = env.AGENT_ENDPOINT;
  if (mode === 'live' && endpoint && !isPlaceholder(endpoint, 'AGENT_ENDPOINT') && !/^https?:\/\/[^\s/]+/.test(endpoint)) problems.push({ message: 'AGENT_ENDPOINT is not an http(s) URL', fix: 'fix it in the .env' });
  if (settings) problems.push(...pluginEnvProblems(settings, env, agentId));
  return problems;
}

function pluginEnvProblems(settings: Settings, env: EnvMap, agentId: string): EnvProblem[] {
  const problems: EnvProblem[] = [];
  const required = (key: string, plugin: string) => {
    const value = env[key] ?? '';
    if (value.trim() === '') problems.push({ message: `${key} is missing (plugins.${plugin} is enabled)` });
    else if (isPlaceholder(value, key)) problems.push({ message: `${key} still holds a placeholder value` });
  };
  if (settings.plugins.telegram_bot.enabled) {
    required('TELEGRAM_BOT_TOKEN', 'telegram_bot');
    if (requireOwner(settings, env) && !(env.TELEGRAM_OWNER_ID?.trim() || env.TELEGRAM_OWNER_USERNAME?.trim())) {
      problems.push({ message: 'owner-only mode needs TELEGRAM_OWNER_ID or TELEGRAM_OWNER_USERNAME', fix: 'set one in the .env' });
    }
    if (env.TELEGRAM_OWNER_ID?.trim() && !/^-?\d+$/.test(env.TELEGRAM_OWNER_ID.trim())) problems.push({ message: 'TELEGRAM_OWNER_ID is not a numeric Telegram id', fix: 'fix it in the .env' });
  }
  if (settings.plugins.telegram_user.enabled) {
    required('TELEGRAM_API_ID', 'telegram_user');
    required('TELEGRAM_API_HASH', 'telegram_user');
    if (env.TELEGRAM_API_ID?.trim() && !isPlaceholder(env.TELEGRAM_API_ID, 'TELEGRAM_API_ID') && !/^\d+$/.test(env.TELEGRAM_API_ID.trim())) problems.push({ message: 'TELEGRAM_API_ID must be a number', fix: 'fix it in the .env' });
    if (!env.TELEGRAM_SESSION_STRING?.trim()) problems.push({ message: 'TELEGRAM_SESSION_STRING is missing', fix: `run \`animus telegram login ${agentId || '<id>'}\` once` });
  }
  return problems;
}

/** Owner-only: the setting, or Broca's TELEGRAM_REQUIRE_OWNER. */
export function requireOwner(settings: Settings, env: EnvMap): boolean {
  return settings.plugins.telegram_bot.require_owner || /^(1|true|yes|on)$/i.test(env.TELEGRAM_REQUIRE_OWNER?.trim() ?? '');
}

/** One line per problem, as the runtime prints them: what is wrong, then how to fix it in that file. */
export function formatEnvProblem(problem: EnvProblem, envPath: string): string {
  return `${problem.message}: ${(problem.fix ?? 'set it in the .env').replace('the .env', envPath)}`;
}
