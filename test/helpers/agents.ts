import { randomUUID } from 'node:crypto';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import type { MessageMode, ProcessManagerName } from '../../src/config/settings.js';
import { deployAgent, type DeployResult } from '../../src/instances/deploy.js';
import { agentPaths, type AgentPaths } from '../../src/home/layout.js';

export interface TestAgentOptions {
  uuid?: string;
  mode?: MessageMode;
  endpoint?: string;
  apiKey?: string;
  repo?: string;
  ref?: string;
  env?: Record<string, string>;
  processManager?: ProcessManagerName;
}

/** Deploys a real agent folder (real clone, .env, settings, database) through the domain, without spawning the CLI. */
export async function deployTestAgent(home: string, options: TestAgentOptions = {}): Promise<DeployResult & { paths: AgentPaths }> {
  const agent = agentIdFromUuid(options.uuid ?? randomUUID());
  const result = await deployAgent({
    home,
    agent,
    mode: options.mode ?? 'echo',
    endpoint: options.endpoint,
    apiKey: options.apiKey,
    repo: options.repo,
    ref: options.ref,
    env: options.env ?? {},
    processManager: options.processManager ?? 'pm2',
  });
  return { ...result, paths: agentPaths(home, agent) };
}
