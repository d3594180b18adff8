import { readAgentText } from '../core/agent-fs.js';
import { isAlive } from '../core/pid.js';
import { parseEnv } from '../config/env-file.js';
import { ENV_FILE, type AgentPaths } from '../home/layout.js';
import { readRuntimeState } from '../instances/runtime-state.js';
import type { CheckResult } from './types.js';

/**
 * The `letta` check of a live agent: one cheap authenticated call (`GET /v1/agents/{id}`,
 * a short timeout; skipped with --offline) that tells a refused key, an unknown agent
 * and an unreachable endpoint apart, then what the runtime recorded about its Letta
 * side (runtime-state.json's `letta` section: an approval held for an operator, an
 * account out of credits), trusted only while the runtime that wrote it is alive.
 */
export interface LettaCheckOptions {
  offline: boolean;
  timeoutMs: number;
}

export const LETTA_CHECK_TIMEOUT_MS = 3000;

export async function checkLetta(paths: AgentPaths, options: LettaCheckOptions): Promise<CheckResult> {
  const live = options.offline ? undefined : await probe(paths, options.timeoutMs);
  if (live && live.status === 'fail') return live;
  const recorded = recordedState(paths);
  if (recorded) return recorded;
  return live ?? { name: 'letta', status: 'ok', message: 'not asked (--offline); the runtime recorded no problem' };
}

async function probe(paths: AgentPaths, timeoutMs: number): Promise<CheckResult> {
  const fail = (message: string): CheckResult => ({ name: 'letta', status: 'fail', message });
  let env: Record<string, string>;
  try {
    env = parseEnv(readAgentText(paths.dir, ENV_FILE) ?? '', paths.env);
  } catch {
    return { name: 'letta', status: 'unknown', message: 'not asked: the .env cannot be read (see the env check)' };
  }
  const endpoint = env.AGENT_ENDPOINT?.trim();
  const apiKey = env.AGENT_API_KEY?.trim();
  if (!endpoint || !apiKey) return { name: 'letta', status: 'unknown', message: 'not asked: AGENT_ENDPOINT or AGENT_API_KEY is missing (see the env check)' };
  const { LettaClient } = await import('../letta/client.js');
  const { LettaCallError } = await import('../letta/errors.js');
  const client = new LettaClient({ endpoint, apiKey, agentId: paths.agent.id });
  try {
    const agent = await client.getAgent({ timeoutMs });
    return { name: 'letta', status: 'ok', message: `Letta knows the agent${agent.name ? ` (${agent.name})` : ''}` };
  } catch (error) {
    if (!(error instanceof LettaCallError)) return fail(`Letta could not be asked: ${(error as Error).message}`);
    const status = error.status;
    if (status === 401 || status === 403) return fail(`Letta refuses the API key (${status}): set AGENT_API_KEY in ${paths.env}, then \`animus restart ${paths.agent.id}\``);
    if (status === 404) return fail(`Letta has no agent ${paths.agent.id} (404): check AGENT_ENDPOINT and that the agent exists in that Letta project`);
    if (status === 422) return fail(`Letta refuses the agent id (422): Letta agent ids are uuid4`);
    if (error.kind === 'timeout' || error.kind === 'connection') return fail(`Letta unreachable at ${hostOf(endpoint)}: ${error.kind === 'timeout' ? `no answer within ${timeoutMs} ms` : error.message.replace(/^cannot reach Letta at \S+: /, '')}`);
    return { name: 'letta', status: 'warn', message: `Letta answers with an error: ${error.message}` };
  } finally {
    client.close();
  }
}

function recordedState(paths: AgentPaths): CheckResult | undefined {
  const state = readRuntimeState(paths.dir);
  const section = state?.sections.letta;
  if (!state || !section || !isAlive(state.pid)) return undefined;
  if (section.status === 'error') return { name: 'letta', status: 'fail', message: section.message };
  if (section.status === 'warn') return { name: 'letta', status: 'warn', message: section.message };
  return undefined;
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}
