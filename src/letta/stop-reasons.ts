/**
 * What the runtime does with each stop reason Letta ends a run with (OpenAPI 1.0.0's
 * StopReasonType). A run that produced assistant text has its text delivered whatever
 * the reason (a warning is logged for any reason but a normal end): asking again
 * would add the user's message to the agent's history a second time. A run without
 * text is never a silent success: it is retried later (transient faults of the model
 * or its provider) or failed with the reason in `last_error`.
 *
 *   stop reason                               no assistant text
 *   end_turn, tool_rule                       completed, no reply sent, warning logged
 *   requires_approval                         the `letta.approvals` policy (deny | approve | hold)
 *   error, llm_api_error,                     retry with backoff (then failed after max_retries)
 *     invalid_llm_response, invalid_tool_call,
 *     no_tool_call
 *   cancelled                                 retry when the runtime cancelled it (run deadline); else failed
 *   max_steps, max_tokens_exceeded,           failed at once, reason in last_error, warning logged
 *     insufficient_credits,
 *     context_window_overflow_in_system_prompt
 *   anything else                             failed at once
 */
export const STOP_REASONS = [
  'end_turn',
  'error',
  'llm_api_error',
  'invalid_llm_response',
  'invalid_tool_call',
  'max_steps',
  'max_tokens_exceeded',
  'no_tool_call',
  'tool_rule',
  'cancelled',
  'insufficient_credits',
  'requires_approval',
  'context_window_overflow_in_system_prompt',
] as const;
export type StopReason = (typeof STOP_REASONS)[number];

export type StopHandling = 'reply' | 'approval' | 'retry' | 'fail';

const NORMAL = new Set(['end_turn', 'tool_rule']);
const TRANSIENT = new Set(['error', 'llm_api_error', 'invalid_llm_response', 'invalid_tool_call', 'no_tool_call']);
/** Reasons whose run Letta marks failed. */
const FAILED = new Set(['error', 'llm_api_error', 'invalid_llm_response', 'invalid_tool_call', 'no_tool_call', 'max_tokens_exceeded', 'context_window_overflow_in_system_prompt', 'insufficient_credits']);

const FIX: Record<string, string> = {
  max_steps: 'the agent used its step limit without replying: raise its max steps or look at its tool loop in Letta',
  max_tokens_exceeded: "the model hit its output token limit before replying: raise max_tokens in the agent's model settings",
  insufficient_credits: 'the Letta account is out of credits: add credits, then `animus queue retry --agent <id>`',
  context_window_overflow_in_system_prompt: "the agent's system prompt and memory no longer fit the model's context window: shorten its memory blocks or pick a larger model",
  cancelled: 'the run was cancelled on the Letta side',
  error: 'Letta failed the run',
  llm_api_error: "the model provider failed (Letta's llm_api_error)",
  invalid_llm_response: 'the model answered something Letta could not use',
  invalid_tool_call: 'the model called a tool wrongly',
  no_tool_call: 'the model called no tool where the agent needed one',
};

/** Whether a reason ends a turn normally (delivered without a warning). */
export function isNormalEnd(reason: string | null): boolean {
  return reason === null || NORMAL.has(reason);
}

export function stopHandling(reason: string | null, hasText: boolean, cancelledByUs = false): StopHandling {
  if (reason === 'requires_approval') return 'approval';
  if (hasText || isNormalEnd(reason)) return 'reply';
  if (reason !== null && TRANSIENT.has(reason)) return 'retry';
  if (reason === 'cancelled' && cancelledByUs) return 'retry';
  return 'fail';
}

/** The one line for `last_error` and the log. */
export function stopReasonText(reason: string | null): string {
  const fix = reason ? FIX[reason] : undefined;
  return `run ended with stop reason ${reason ?? 'none'} and no reply${fix ? `: ${fix}` : ''}`;
}

/** The status Letta gives a run that ended with `reason` (its StopReasonType.run_status); an unknown reason counts as completed, as Letta's finalizer does. */
export function runStatusOf(reason: string): 'completed' | 'failed' | 'cancelled' {
  if (reason === 'cancelled') return 'cancelled';
  return FAILED.has(reason) ? 'failed' : 'completed';
}
