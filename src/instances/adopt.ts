import type { AgentId } from '../core/agent-id.js';

export interface AdoptOptions {
  home: string;
  agents?: AgentId[];
  apply: boolean;
  signal?: AbortSignal;
}

export interface AdoptReport {
  id: string;
  changes: string[];
  warnings: string[];
}

export async function adoptAgents(_options: AdoptOptions): Promise<AdoptReport[]> {
  return [];
}
