import type { Database, Statement } from 'better-sqlite3';
import { preparedFor } from './statements.js';

/**
 * `agent_requests` (migration 3): one row per request to the agent, written before it
 * is sent. Its outcomes and error kinds are listed with the migration. A row whose
 * outcome is open (sending, running, awaiting_approval) is the agent's lane: the
 * runtime finishes it (resumes its run, resolves whether it was sent, or waits for an
 * operator's approval decision) before it sends anything new.
 */

export type RequestKind = 'message' | 'approval';
export type RequestOutcome = 'sending' | 'running' | 'replied' | 'no_reply' | 'approval' | 'awaiting_approval' | 'retry' | 'failed' | 'abandoned';
export type RequestErrorKind = 'timeout' | 'connection' | 'http_4xx' | 'http_5xx' | 'rate_limited' | 'stop_reason' | 'approval' | 'user_block';

export const OPEN_OUTCOMES: readonly RequestOutcome[] = ['sending', 'running', 'awaiting_approval'];

export interface ToolCallRequest {
  name: string;
  arguments: string;
  tool_call_id: string;
}

export interface ApprovalRecord {
  toolCalls: ToolCallRequest[];
  /** The approval_request_message id (what the older answer form names). */
  requestId: string | null;
  /** Found pending on the agent (409 PENDING_APPROVAL), not asked by this item's own run. */
  orphan?: boolean;
  /** How it was, or is to be, answered. */
  decision?: { approve: boolean; reason: string; at: string; by: 'policy' | 'operator' };
}

export interface RequestRow {
  id: number;
  queueId: number | null;
  messageId: number | null;
  attempt: number | null;
  kind: RequestKind;
  otid: string | null;
  runId: string | null;
  startedAt: number | null;
  outcome: RequestOutcome;
  approval: ApprovalRecord | null;
  blockId: string | null;
}

export interface RequestEnd {
  outcome: RequestOutcome;
  stopReason?: string | null;
  httpStatus?: number | null;
  errorKind?: RequestErrorKind | null;
  error?: string | null;
  latencyMs?: number | null;
  usage?: { promptTokens?: number | null; completionTokens?: number | null; totalTokens?: number | null };
  now?: number;
}

interface Statements {
  insert: Statement;
  setRun: Statement;
  finish: Statement;
  open: Statement;
  byId: Statement;
  runIds: Statement;
  setApproval: Statement;
  setBlock: Statement;
  detached: Statement;
  undetached: Statement;
  held: Statement;
}

const COLUMNS = 'id, queue_id, message_id, attempt, kind, otid, run_id, started_at, outcome, approval, block_id';

const statements = preparedFor((db): Statements => ({
  insert: db.prepare(`INSERT INTO agent_requests (queue_id, message_id, attempt, kind, otid, started_at, outcome, approval, block_id)
    VALUES (@queueId, @messageId, @attempt, @kind, @otid, @now, 'sending', @approval, @blockId) RETURNING id`),
  setRun: db.prepare("UPDATE agent_requests SET run_id = ?, outcome = 'running' WHERE id = ?"),
  finish: db.prepare(`UPDATE agent_requests SET outcome = @outcome, finished_at = @now, stop_reason = @stopReason, http_status = @httpStatus, error_kind = @errorKind,
    error = @error, latency_ms = @latency, prompt_tokens = @prompt, completion_tokens = @completion, total_tokens = @total WHERE id = @id`),
  open: db.prepare(`SELECT ${COLUMNS} FROM agent_requests WHERE outcome IN ('sending', 'running', 'awaiting_approval') ORDER BY id LIMIT 1`),
  byId: db.prepare(`SELECT ${COLUMNS} FROM agent_requests WHERE id = ?`),
  runIds: db.prepare('SELECT run_id FROM agent_requests WHERE queue_id = ? AND run_id IS NOT NULL'),
  setApproval: db.prepare('UPDATE agent_requests SET approval = ?, outcome = COALESCE(?, outcome) WHERE id = ?'),
  setBlock: db.prepare('UPDATE agent_requests SET block_id = ?, block_detached_at = NULL WHERE id = ?'),
  detached: db.prepare('UPDATE agent_requests SET block_detached_at = ? WHERE block_id = ? AND block_detached_at IS NULL'),
  // A block stays attached while its item's conversation is open (a run going on, an approval held).
  undetached: db.prepare(`SELECT DISTINCT block_id FROM agent_requests WHERE block_id IS NOT NULL AND block_detached_at IS NULL
    AND queue_id NOT IN (SELECT queue_id FROM agent_requests WHERE outcome IN ('sending', 'running', 'awaiting_approval') AND queue_id IS NOT NULL)`),
  held: db.prepare(`SELECT ${COLUMNS} FROM agent_requests WHERE outcome = 'awaiting_approval' ORDER BY id`),
}));

function toRow(raw: Record<string, unknown> | undefined): RequestRow | undefined {
  if (!raw) return undefined;
  let approval: ApprovalRecord | null = null;
  if (typeof raw.approval === 'string') {
    try {
      approval = JSON.parse(raw.approval) as ApprovalRecord;
    } catch {
      approval = null;
    }
  }
  return {
    id: raw.id as number,
    queueId: (raw.queue_id as number | null) ?? null,
    messageId: (raw.message_id as number | null) ?? null,
    attempt: (raw.attempt as number | null) ?? null,
    kind: raw.kind === 'approval' ? 'approval' : 'message',
    otid: (raw.otid as string | null) ?? null,
    runId: (raw.run_id as string | null) ?? null,
    startedAt: (raw.started_at as number | null) ?? null,
    outcome: raw.outcome as RequestOutcome,
    approval,
    blockId: (raw.block_id as string | null) ?? null,
  };
}

export function insertRequest(
  db: Database,
  request: { queueId: number; messageId: number | null; attempt: number; kind: RequestKind; otid: string; approval?: ApprovalRecord; blockId?: string | null; now?: number },
): number {
  const row = statements(db).insert.get({
    queueId: request.queueId,
    messageId: request.messageId,
    attempt: request.attempt,
    kind: request.kind,
    otid: request.otid,
    now: request.now ?? Date.now(),
    approval: request.approval ? JSON.stringify(request.approval) : null,
    blockId: request.blockId ?? null,
  }) as { id: number };
  return row.id;
}

/** Recorded the moment Letta names the run, before the runtime waits on it. */
export function recordRun(db: Database, id: number, runId: string): void {
  statements(db).setRun.run(runId, id);
}

export function finishRequest(db: Database, id: number, end: RequestEnd): void {
  statements(db).finish.run({
    id,
    outcome: end.outcome,
    now: end.now ?? Date.now(),
    stopReason: end.stopReason ?? null,
    httpStatus: end.httpStatus ?? null,
    errorKind: end.errorKind ?? null,
    error: end.error ?? null,
    latency: end.latencyMs === undefined || end.latencyMs === null ? null : Math.round(end.latencyMs),
    prompt: end.usage?.promptTokens ?? null,
    completion: end.usage?.completionTokens ?? null,
    total: end.usage?.totalTokens ?? null,
  });
}

/** The oldest open request: the lane the runtime must finish before sending anything new. */
export function openRequest(db: Database): RequestRow | undefined {
  return toRow(statements(db).open.get() as Record<string, unknown> | undefined);
}

export function getRequest(db: Database, id: number): RequestRow | undefined {
  return toRow(statements(db).byId.get(id) as Record<string, unknown> | undefined);
}

/** Runs already known for a queue item (a lost run is one that is not among them). */
export function knownRunIds(db: Database, queueId: number): Set<string> {
  return new Set((statements(db).runIds.all(queueId) as Array<{ run_id: string }>).map((r) => r.run_id));
}

export function setApproval(db: Database, id: number, approval: ApprovalRecord, outcome?: RequestOutcome): void {
  statements(db).setApproval.run(JSON.stringify(approval), outcome ?? null, id);
}

export function heldApprovals(db: Database): RequestRow[] {
  return (statements(db).held.all() as Array<Record<string, unknown>>).map((raw) => toRow(raw)!);
}

export function recordBlockAttached(db: Database, id: number, blockId: string): void {
  statements(db).setBlock.run(blockId, id);
}

export function recordBlockDetached(db: Database, blockId: string, now: number = Date.now()): void {
  statements(db).detached.run(now, blockId);
}

/** Blocks attached for a finished request whose detach has not succeeded yet. */
export function pendingDetaches(db: Database): string[] {
  return (statements(db).undetached.all() as Array<{ block_id: string }>).map((r) => r.block_id);
}
