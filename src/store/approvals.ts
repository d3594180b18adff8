import type { Database } from 'better-sqlite3';
import { AnimusError } from '../core/errors.js';
import { heldApprovals, setApproval } from './agent-requests.js';

/**
 * Tool approvals held for an operator (`letta.approvals` = hold): `animus approvals
 * list|approve|deny`. A decision is written into the held request's row, where the
 * runtime picks it up (at once when woken through runtime.sock, else at its next poll
 * or start) and sends the answer to Letta.
 *
 * JSON shapes (stable; `animus approvals … --json`):
 *   list:            { agent, approvals: Held[] }
 *   approve|deny:    { agent, request, item, approve, reason, tools, runtimeWoken }
 *   Held:            { request, item, since, tools: [{name, arguments, toolCallId}], decision: {approve, reason, at} | null }
 */
export interface HeldApproval {
  request: number;
  item: number | null;
  since: string | null;
  tools: Array<{ name: string; arguments: string; toolCallId: string }>;
  decision: { approve: boolean; reason: string; at: string } | null;
}

export function listApprovals(db: Database, agent: string): { agent: string; approvals: HeldApproval[] } {
  if (!hasRequestsTable(db)) return { agent, approvals: [] };
  return {
    agent,
    approvals: heldApprovals(db).map((row) => ({
      request: row.id,
      item: row.queueId,
      since: row.startedAt === null ? null : new Date(row.startedAt).toISOString(),
      tools: (row.approval?.toolCalls ?? []).map((call) => ({ name: call.name, arguments: call.arguments, toolCallId: call.tool_call_id })),
      decision: row.approval?.decision ? { approve: row.approval.decision.approve, reason: row.approval.decision.reason, at: row.approval.decision.at } : null,
    })),
  };
}

/** Records an operator's answer to the held approval (or to `request`, when several are held). */
export function decideApproval(db: Database, agent: string, decision: { approve: boolean; reason?: string; request?: number }): Omit<HeldApproval, 'since' | 'decision'> & { approve: boolean; reason: string } {
  return db.transaction(() => {
    const held = hasRequestsTable(db) ? heldApprovals(db) : [];
    if (held.length === 0) throw new AnimusError('ENOTFOUND', `no tool approval is waiting on ${agent}: \`animus approvals list --agent ${agent}\` shows what waits`);
    const row = decision.request === undefined ? held[0]! : held.find((r) => r.id === decision.request);
    if (!row) throw new AnimusError('ENOTFOUND', `no held approval ${decision.request} on ${agent}: pass one of ${held.map((r) => r.id).join(', ')}`);
    if (held.length > 1 && decision.request === undefined) throw new AnimusError('EUSAGE', `${held.length} approvals wait on ${agent}: pass --request with one of ${held.map((r) => r.id).join(', ')}`);
    const reason = decision.reason?.trim() || (decision.approve ? 'approved by an operator' : 'denied by an operator');
    const approval = { toolCalls: row.approval?.toolCalls ?? [], requestId: row.approval?.requestId ?? null, ...row.approval, decision: { approve: decision.approve, reason, at: new Date().toISOString(), by: 'operator' as const } };
    setApproval(db, row.id, approval);
    return {
      request: row.id,
      item: row.queueId,
      tools: approval.toolCalls.map((call) => ({ name: call.name, arguments: call.arguments, toolCallId: call.tool_call_id })),
      approve: decision.approve,
      reason,
    };
  }).immediate();
}

function hasRequestsTable(db: Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent_requests'").get() !== undefined;
}
