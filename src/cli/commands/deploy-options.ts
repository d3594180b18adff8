import { readFile } from 'node:fs/promises';
import { lettaAgentIdProblem, parseAgentId, type AgentId } from '../../core/agent-id.js';
import { AnimusError } from '../../core/errors.js';
import { parseEnv, parseEnvAssignment, type EnvMap } from '../../config/env-file.js';
import { MESSAGE_MODES, LOCAL_PROCESS_MANAGERS, type MessageMode, type ProcessManagerName } from '../../config/settings.js';
import type { DeployOptions } from '../../instances/deploy.js';
import type { CliContext } from '../context.js';
import { askText } from './prompts.js';

type DeployPlan = Omit<DeployOptions, 'signal' | 'onStep'>;

/**
 * The edge of `animus deploy`: every flag is checked here, defaults and environment
 * fallbacks applied, and missing values asked for (at a terminal) or refused with the
 * flag to pass. Nothing touches the disk until all of it is valid.
 */
export async function normalizeDeployOptions(ids: string[], raw: Record<string, unknown>, ctx: CliContext): Promise<DeployPlan[]> {
  const agents = uniqueAgents(ids.map(parseAgentId));
  const mode = oneOf('--mode', raw.mode, MESSAGE_MODES) as MessageMode;
  const extraEnv = await readExtraEnv(raw);
  const needsAgent = mode === 'live';
  for (const agent of needsAgent ? agents : []) {
    const problem = lettaAgentIdProblem(agent);
    if (problem) throw new AnimusError('EBADID', problem);
  }

  let endpoint = stringOption(raw.endpoint) ?? extraEnv.AGENT_ENDPOINT ?? ctx.env.AGENT_ENDPOINT;
  let apiKey = stringOption(raw.apiKey) ?? extraEnv.AGENT_API_KEY ?? ctx.env.AGENT_API_KEY;
  delete extraEnv.AGENT_ENDPOINT;
  delete extraEnv.AGENT_API_KEY;
  if (extraEnv.AGENT_ID !== undefined) throw new AnimusError('EUSAGE', 'AGENT_ID comes from the deployed id: remove it from --env/--env-file');
  if (needsAgent && !endpoint) {
    endpoint = await askText(ctx, 'Letta endpoint (AGENT_ENDPOINT)', '--endpoint <url> (or use --mode echo to try without an agent)', { validate: (v) => endpointProblem(v) ?? true });
  }
  if (endpoint) {
    const problem = endpointProblem(endpoint);
    if (problem) throw new AnimusError('EUSAGE', `--endpoint "${endpoint}" ${problem}`);
  }
  if (needsAgent && !apiKey) apiKey = await askText(ctx, 'Letta API key (AGENT_API_KEY)', '--api-key <key> or set AGENT_API_KEY', { secret: true });
  // The runtime refuses a placeholder key at start: refuse it now, before anything is made.
  const { validateEnvValue } = await import('../../instances/agent-env.js');
  if (apiKey) validateEnvValue('AGENT_API_KEY', apiKey);
  if (endpoint) validateEnvValue('AGENT_ENDPOINT', endpoint);

  const { readPreferences } = await import('../../config/preferences.js');
  const saved = await readPreferences(ctx.env);
  const processManager = oneOf('--process-manager', raw.processManager ?? saved.processManager ?? 'pm2', LOCAL_PROCESS_MANAGERS) as ProcessManagerName;
  const repo = stringOption(raw.repo) ?? saved.runtimeRepo;
  const ref = stringOption(raw.ref) ?? saved.runtimeRef;
  const home = await ctx.home();
  return agents.map((agent) => ({
    home,
    agent,
    endpoint,
    apiKey,
    name: stringOption(raw.name),
    description: stringOption(raw.description),
    mode,
    processManager,
    repo,
    ref,
    env: extraEnv,
  }));
}

function endpointProblem(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an http(s) URL';
    return undefined;
  } catch {
    return 'is not a URL: expected e.g. https://api.letta.com';
  }
}

async function readExtraEnv(raw: Record<string, unknown>): Promise<EnvMap> {
  const env: EnvMap = {};
  const file = stringOption(raw.envFile);
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new AnimusError('ENOTFOUND', `--env-file ${file} cannot be read (${(error as NodeJS.ErrnoException).code}): check the path`, { cause: error });
    }
    Object.assign(env, parseEnv(text, `--env-file ${file}`));
  }
  for (const assignment of (raw.env as string[] | undefined) ?? []) {
    const [key, value] = parseEnvAssignment(assignment);
    env[key] = value;
  }
  return env;
}

function uniqueAgents(agents: AgentId[]): AgentId[] {
  const seen = new Set<string>();
  for (const agent of agents) {
    if (seen.has(agent.uuid)) throw new AnimusError('EUSAGE', `${agent.id} is named twice`);
    seen.add(agent.uuid);
  }
  return agents;
}

function oneOf(flag: string, value: unknown, allowed: readonly string[]): string {
  if (typeof value !== 'string' || !allowed.includes(value)) {
    throw new AnimusError('EUSAGE', `${flag} must be one of ${allowed.join(', ')}, not "${String(value)}"`);
  }
  return value;
}

function stringOption(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}
