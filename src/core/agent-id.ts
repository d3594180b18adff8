import { AnimusError } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A Letta agent id in its two spellings; `folder` is also the agent's folder name. */
export interface AgentId {
  /** Lower-case UUID. */
  uuid: string;
  /** `agent-<uuid>`: Letta's id, the folder name and what every output shows. */
  id: string;
}

export function agentIdFromUuid(uuid: string): AgentId {
  return { uuid, id: `agent-${uuid}` };
}

/**
 * Accepts `agent-<uuid>` or a bare UUID, in any case. Everything else (paths, `..`,
 * empty strings, other prefixes) is refused, because the id becomes a folder name.
 */
export function parseAgentId(raw: string): AgentId {
  const input = raw.trim();
  if (input === '') {
    throw new AnimusError('EBADID', 'agent id is empty: pass a Letta agent id like agent-<uuid> or a bare UUID');
  }
  if (/[/\\]|\.\./.test(input)) {
    throw new AnimusError('EBADID', `agent id "${printable(raw)}" contains a path: pass a Letta agent id like agent-<uuid> or a bare UUID`);
  }
  const lower = input.toLowerCase();
  const uuid = lower.startsWith('agent-') ? lower.slice('agent-'.length) : lower;
  if (!UUID.test(uuid)) {
    throw new AnimusError('EBADID', `"${printable(raw)}" is not an agent id: expected agent-<uuid> or a bare UUID (8-4-4-4-12 hex digits)`);
  }
  return agentIdFromUuid(uuid);
}

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Whether Letta would take this id: its agent ids are `agent-<uuid4>` (other UUID versions get 422). */
export function isLettaAgentId(agent: AgentId): boolean {
  return UUID4.test(agent.uuid);
}

/** The uuid4 rule as one line: for a live agent, an id Letta refuses is refused before anything is made. */
export function lettaAgentIdProblem(agent: AgentId): string | undefined {
  if (isLettaAgentId(agent)) return undefined;
  const version = agent.uuid[14];
  return `${agent.id} is not a Letta agent id: Letta agent ids are uuid4 (agent-xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx), this one is version ${version}; copy the id from Letta (or use --mode echo to try without an agent)`;
}

/** Whether a folder name in the home is an agent folder. */
export function agentIdFromFolderName(name: string): AgentId | undefined {
  if (!name.startsWith('agent-')) return undefined;
  const uuid = name.slice('agent-'.length);
  return UUID.test(uuid) ? agentIdFromUuid(uuid) : undefined;
}

function printable(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}
