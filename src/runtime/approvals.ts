import type { ApprovalPolicy } from '../config/settings.js';
import type { LettaMessage, OutgoingMessage } from '../letta/client.js';
import type { ApprovalRecord, ToolCallRequest } from '../store/agent-requests.js';
import { isoTime } from '../core/time.js';

/**
 * Tool approvals. A run that needs one ends with stop reason `requires_approval` and an
 * `approval_request_message` (`tool_call`, or `tool_calls` for parallel calls); until it
 * is answered every new message to the agent gets 409 PENDING_APPROVAL. The answer is
 * a message of type `approval`: `approvals: [{type, tool_call_id, approve, reason}]`, or,
 * on servers that predate it, `approval_request_id, approve, reason`.
 */

export const DENY_REASON = 'denied by the operator\'s policy (letta.approvals = deny): this tool needs a person to approve it';
export const APPROVE_REASON = 'approved automatically (letta.approvals = approve)';

/** The newest approval request among messages (a run's, in order; or the agent's history, newest first when `newestFirst`). */
export function findApprovalRequest(messages: readonly LettaMessage[], newestFirst = false): Omit<ApprovalRecord, 'decision'> | undefined {
  const ordered = newestFirst ? messages : [...messages].reverse();
  const request = ordered.find((m) => m?.message_type === 'approval_request_message');
  if (!request) return undefined;
  const calls = Array.isArray(request.tool_calls) && request.tool_calls.length > 0 ? request.tool_calls : request.tool_call ? [request.tool_call] : [];
  const toolCalls: ToolCallRequest[] = calls
    .filter((call) => typeof call?.tool_call_id === 'string')
    .map((call) => ({ name: String(call.name ?? 'unknown tool'), arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {}), tool_call_id: call.tool_call_id! }));
  return { toolCalls, requestId: typeof request.id === 'string' ? request.id : null };
}

/**
 * An approval request still unanswered in the agent's history (newest first): the newest
 * approval request with no approval response after it. This is what Letta's 409
 * PENDING_APPROVAL will refuse the next message for; reading it at start lets the
 * runtime say so before any message arrives.
 */
export function unansweredApprovalRequest(historyNewestFirst: readonly LettaMessage[]): (Omit<ApprovalRecord, 'decision'> & { since: string | null }) | undefined {
  const newest = historyNewestFirst.find((m) => m?.message_type === 'approval_request_message' || m?.message_type === 'approval_response_message');
  if (newest?.message_type !== 'approval_request_message') return undefined;
  const request = findApprovalRequest([newest]);
  if (!request || request.toolCalls.length === 0) return undefined;
  return { ...request, since: typeof newest.date === 'string' ? newest.date : null };
}

/** The decision a policy takes by itself; undefined for `hold` (an operator decides). */
export function policyDecision(policy: ApprovalPolicy, now: Date = new Date()): ApprovalRecord['decision'] | undefined {
  if (policy === 'hold') return undefined;
  return { approve: policy === 'approve', reason: policy === 'approve' ? APPROVE_REASON : DENY_REASON, at: isoTime(now), by: 'policy' };
}

/** The answer message; `legacy` uses the older single-request form. */
export function approvalMessage(approval: ApprovalRecord, otid: string, legacy = false): OutgoingMessage {
  const decision = approval.decision!;
  if (legacy && approval.requestId) return { type: 'approval', approval_request_id: approval.requestId, approve: decision.approve, reason: decision.reason, otid };
  return {
    type: 'approval',
    approvals: approval.toolCalls.map((call) => ({ type: 'approval' as const, tool_call_id: call.tool_call_id, approve: decision.approve, reason: decision.reason })),
    otid,
  };
}

/** One line naming what waits: `send_email({"to":…})`. */
export function describeToolCalls(calls: readonly ToolCallRequest[]): string {
  return calls.map((call) => `${call.name}(${call.arguments.length > 80 ? `${call.arguments.slice(0, 77)}...` : call.arguments})`).join(', ') || 'a tool call';
}
