import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { DONE, RunLog, data, errorEvent, messageJson, pingJson, streamRun } from './letta-stream.js';

/**
 * A real HTTP server on 127.0.0.1 that answers as Letta's REST API does (OpenAPI 1.0.0,
 * server 0.16.8, as /work/shared/README.md describes it), failures included:
 *
 *   POST  /v1/agents/{id}/messages          one run, answered when it ends: {messages, stop_reason, usage}
 *   POST  /v1/agents/{id}/messages/async    a background run, answered at once with the Run
 *   POST  /v1/agents/{id}/messages/stream   a run answered as SSE (`background`, `include_pings`; letta-stream.ts)
 *   GET   /v1/runs/{id}  /v1/runs/{id}/messages  /v1/runs/{id}/usage
 *   POST  /v1/runs/{id}/stream             {starting_after?, include_pings?}: a background stream read again
 *   GET   /v1/runs/active?agent_id=…  and  /v1/runs/?agent_id=…&active=true
 *   POST  /v1/agents/{id}/messages/cancel   {run_ids?}
 *   GET   /v1/agents/{id}/messages?limit&order   the agent's history (user messages keep their otid)
 *   GET   /v1/agents/{id}
 *   POST  /v1/identities/ (409 for a taken identifier_key), GET /v1/identities/?identifier_key=
 *   POST  /v1/blocks/, GET|DELETE /v1/blocks/{id}
 *   PATCH /v1/agents/{id}/core-memory/blocks/attach|detach/{block_id} (404 for a block that is gone)
 *
 * Modelled: every stop reason (with or without assistant text), tool approval requests
 * and the PENDING_APPROVAL state (until answered, every new message gets
 * `409 {"detail":{"code":"PENDING_APPROVAL",...}}`), the current and the older answer
 * form, both error shapes (`{"detail"}` and `{"error":{type,message,detail}}`), slow
 * runs (think time), connections dropped before or after a run started (the run goes
 * on), cancellation, uuid4-only ids (422 otherwise), and how many runs overlapped on
 * one agent (`maxConcurrentRuns`: Letta says concurrent requests are undefined behaviour).
 *
 * The stream route, as server 0.16.8's streaming_service / redis_stream_manager write it: the
 * refusals (422, 401, 404, scripted statuses) come as JSON before any stream; then a 200
 * `text/event-stream` whose first event is a ping naming the run (include_pings, the default),
 * keepalive pings every `keepaliveMs` of silence, the run's messages (never the input), then
 * stop_reason, usage_statistics, [DONE]. In background mode every stored chunk has a seq_id from
 * 1 (keepalives carry the last one). An error stop reason ends with stop_reason and `event: error`
 * (background: no [DONE] reaches the reader); a pending approval, or a wrong answer to one, is met
 * inside the stream (200, stop_reason error, an internal_error event), not with a 409/400; a cancelled run ends with the
 * cancellation wrapper's stop_reason after the step in flight. The run's final status lands after
 * the terminal chunk (`statusLagMs`, `settleRuns()`). Failures: dropAfterStart, dropMidStream
 * (after the ping), answerDelayMs, stallMs, maxStreamSilenceMs (a ping-only stream ends with no
 * terminal event), `streamRoute: 'no-route'` (405: the path only matches PATCH
 * …/messages/{message_id}) and `'no-redis'` (503 for background, after a run was made and failed).
 *
 * Usage:
 *   const letta = await startLettaServer({ apiKey: 'sk-let-…', thinkMs: 150, keepaliveMs: 50, streamRoute: 'background' });
 *   letta.reply = (text) => `hi: ${text}`;   // default assistant text (text = the user content)
 *   letta.script({ status: 500 }, { stopReason: 'insufficient_credits' }, { approval: { name: 'send_email' } });  // next user messages, in order
 *   letta.script({ dropMidStream: true }, { stopReason: 'llm_api_error', errorType: 'llm_timeout' }, { stallMs: 5000 });  // stream failures
 *   letta.memoryScript('detach', { status: 500 });   // next calls to a memory route
 *   letta.requests, letta.messageRequests(), letta.runs, letta.maxConcurrentRuns, letta.approvalAnswers
 *   await letta.close()
 */
export type StopReason =
  | 'end_turn'
  | 'error'
  | 'llm_api_error'
  | 'invalid_llm_response'
  | 'invalid_tool_call'
  | 'max_steps'
  | 'max_tokens_exceeded'
  | 'no_tool_call'
  | 'tool_rule'
  | 'cancelled'
  | 'insufficient_credits'
  | 'requires_approval'
  | 'context_window_overflow_in_system_prompt';

export interface LettaStep {
  /** Refuse the POST with this status (no run is made) and an error body (`body`, else one of `shape`). */
  status?: number;
  body?: unknown;
  shape?: 'detail' | 'error';
  headers?: Record<string, string>;
  /** The run's think time (and, for the blocking endpoint, the delay of the answer). */
  delayMs?: number;
  /** Destroy the connection before anything is made. */
  drop?: boolean;
  /** Make the run, then destroy the connection without answering: the run goes on. */
  dropAfterStart?: boolean;
  /** /messages/stream: make the run, send the first event (the ping naming the run), then destroy the connection: the run goes on. */
  dropMidStream?: boolean;
  /** /messages/stream: after the first event, write nothing at all (no keepalive either) for this long, then go on. */
  stallMs?: number;
  /** /messages/stream, stop reason llm_api_error: which LLM failure the error event names (default llm_error). */
  errorType?: 'llm_error' | 'llm_timeout' | 'llm_rate_limit' | 'llm_authentication';
  /** Answer the POST this long after the run was made (a slow gateway). */
  answerDelayMs?: number;
  /** Hold the POST this long before the run is made (a busy server: the run lands after the caller gave up waiting). */
  acceptDelayMs?: number;
  /** Assistant text; '' for none. Default: `reply()` for end_turn/tool_rule, none for other reasons. */
  reply?: string;
  stopReason?: StopReason;
  /** The run stops for approval of this tool call. */
  approval?: { name: string; arguments?: string };
}

export interface LettaRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  authorization: string | undefined;
  at: number;
  /** The user message text of a POST to /messages or /messages/async. */
  text?: string;
  otid?: string;
  senderId?: string;
  /** When the run this request made ended (performance.now()). */
  answeredAt?: number;
}

export interface LettaMessageRecord {
  id: string;
  message_type: string;
  date: string;
  run_id: string;
  otid?: string | null;
  content?: unknown;
  sender_id?: string;
  [key: string]: unknown;
}

export interface RunRecord {
  id: string;
  agent_id: string;
  status: 'created' | 'running' | 'completed' | 'failed' | 'cancelled';
  stop_reason: StopReason | null;
  background: boolean;
  created_at: string;
  completed_at: string | null;
  messages: LettaMessageRecord[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; step_count: number };
  /** The input's otid (the user message's or the approval answer's). */
  otid: string | null;
  kind: 'message' | 'approval';
  cancel?: () => void;
}

export interface ApprovalAnswer {
  agent: string;
  form: 'current' | 'legacy';
  toolCallIds: string[];
  approve: boolean;
  reason: string | undefined;
}

interface PendingApproval {
  requestId: string;
  toolCalls: Array<{ name: string; arguments: string; tool_call_id: string }>;
}

interface AgentRecord {
  history: LettaMessageRecord[];
  active: number;
  maxActive: number;
  pending: PendingApproval | undefined;
  attached: Set<string>;
}

type MemoryRoute = 'attach' | 'detach' | 'identity' | 'block';

export interface LettaServer {
  url: string;
  port: number;
  requests: LettaRequest[];
  /** Requests that carried a user message (not approval answers). */
  messageRequests(): LettaRequest[];
  reply: (text: string, agentId: string) => string;
  /** The text of the run that follows an approval answer. */
  afterApproval: (approved: boolean, tool: string) => string;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; step_count: number };
  script(...steps: LettaStep[]): void;
  /** Steps for the runs that answers to approvals start (default: a reply naming the decision). */
  scriptApproval(...steps: LettaStep[]): void;
  memoryScript(route: MemoryRoute, ...steps: LettaStep[]): void;
  /** Applied to every user message once the script is used up. */
  fallback: LettaStep | undefined;
  /** Default think time of every run. */
  thinkMs: number;
  /** `legacy`: an older server that only takes `approval_request_id` answers (422 for `approvals`). */
  approvalForms: 'both' | 'legacy';
  runs: Map<string, RunRecord>;
  /** The most runs ever going on one agent at the same time. */
  readonly maxConcurrentRuns: number;
  approvalAnswers: ApprovalAnswer[];
  blocks: Map<string, { id: string; label: string; value: string }>;
  identities: Map<string, { id: string; identifier_key: string; name: string }>;
  attached(agentId: string): string[];
  pendingApproval(agentId: string): PendingApproval | undefined;
  /** A user message the agent's history holds with this otid, per agent (how many times it reached the agent). */
  deliveriesOf(agentId: string, otid: string): number;
  deleteBlock(id: string): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<LettaRequest[]>;
  onMessage: ((request: LettaRequest) => void) | undefined;
  /** Apply now the final statuses that background streams' finalizers still hold (see `statusLagMs`). */
  settleRuns(): void;
  close(): Promise<void>;
}

export interface LettaServerOptions {
  /** Expected bearer key; others get 401. */
  apiKey?: string;
  /** Known agent ids; others get 404. */
  agents?: string[];
  port?: number;
  /** The address to listen on (default 127.0.0.1; the cluster test gives its network namespace's node address). */
  host?: string;
  thinkMs?: number;
  /** /messages/stream: seconds of silence between keepalive pings, in ms (the server's keepalive_interval, 20 s); 0: none. */
  keepaliveMs?: number;
  /** /messages/stream: a ping-only stream ends (no terminal event) after this long (the server's max_stream_silence, 1800 s). */
  maxStreamSilenceMs?: number;
  /** /messages/stream: `no-route` a server without the route (405: the path falls to PATCH …/messages/{message_id}); `no-redis` a server without Redis (503 for background). */
  streamRoute?: 'background' | 'no-route' | 'no-redis';
  /**
   * A background stream's run is marked ended by the finalizer after the terminal chunk is stored,
   * so `GET /v1/runs/{id}` right after [DONE] may still say `running`: this long after (default 0:
   * the next turn of the event loop). `settleRuns()` applies held statuses at once.
   */
  statusLagMs?: number;
}

const UUID4 = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}';
const AGENT_ID = new RegExp(`^agent-${UUID4}$`);
const BLOCK_ID = new RegExp(`^block-${UUID4}$`);
/** The run status of a stream's stop reason (StopReasonType.run_status, letta/schemas/letta_stop_reason.py). */
const STREAM_FAILED = new Set<StopReason>(['error', 'invalid_tool_call', 'no_tool_call', 'invalid_llm_response', 'llm_api_error', 'max_tokens_exceeded', 'context_window_overflow_in_system_prompt', 'insufficient_credits']);
/** Stop reasons the stream service reaches through an exception: stop_reason, then `event: error` (error_aware_stream). */
const STREAM_ERRORS: Partial<Record<StopReason, [string, string]>> = {
  error: ['internal_error', 'An unknown error occurred with the LLM streaming request.'],
  llm_api_error: ['llm_error', 'An error occurred with the LLM request.'],
  invalid_llm_response: ['llm_empty_response', 'LLM returned an empty response.'],
  context_window_overflow_in_system_prompt: ['context_window_overflow_in_system_prompt', "Compaction failed because the system prompt is too large for this model's context window. Reduce system instructions, memory blocks, or tools, or use a model with a larger context window."],
};
const LLM_ERRORS: Record<NonNullable<LettaStep['errorType']>, string> = {
  llm_error: 'An error occurred with the LLM request.',
  llm_timeout: 'The LLM request timed out. Please try again.',
  llm_rate_limit: 'Rate limit exceeded for LLM model provider. Please wait before making another request.',
  llm_authentication: 'Authentication failed with the LLM model provider.',
};
/** Stop reasons whose runs Letta marks failed (the rest complete, except cancelled). */
const FAILED = new Set<StopReason>(['error', 'llm_api_error', 'invalid_llm_response', 'invalid_tool_call', 'no_tool_call', 'context_window_overflow_in_system_prompt', 'insufficient_credits']);

export async function startLettaServer(options: LettaServerOptions = {}): Promise<LettaServer> {
  const steps: LettaStep[] = [];
  const approvalSteps: LettaStep[] = [];
  const memorySteps: Record<MemoryRoute, LettaStep[]> = { attach: [], detach: [], identity: [], block: [] };
  const sockets = new Set<Socket>();
  const waiters: Array<{ count: number; resolve: (r: LettaRequest[]) => void }> = [];
  const agents = new Map<string, AgentRecord>();
  let maxConcurrent = 0;

  const agentRecord = (id: string): AgentRecord => {
    let record = agents.get(id);
    if (!record) {
      record = { history: [], active: 0, maxActive: 0, pending: undefined, attached: new Set() };
      agents.set(id, record);
    }
    return record;
  };

  const state: LettaServer = {
    url: '',
    port: 0,
    requests: [],
    messageRequests: () => state.requests.filter((r) => r.text !== undefined),
    reply: (text) => `echo: ${text}`,
    afterApproval: (approved, tool) => (approved ? `done: ${tool} ran` : `understood: ${tool} was not allowed`),
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, step_count: 1 },
    script: (...more) => void steps.push(...more),
    scriptApproval: (...more) => void approvalSteps.push(...more),
    memoryScript: (route, ...more) => void memorySteps[route].push(...more),
    fallback: undefined,
    thinkMs: options.thinkMs ?? 0,
    approvalForms: 'both',
    runs: new Map(),
    get maxConcurrentRuns() {
      return maxConcurrent;
    },
    approvalAnswers: [],
    blocks: new Map(),
    identities: new Map(),
    attached: (id) => [...agentRecord(id).attached],
    pendingApproval: (id) => agentRecord(id).pending,
    deliveriesOf: (id, otid) => agentRecord(id).history.filter((m) => m.message_type === 'user_message' && m.otid === otid).length,
    deleteBlock: (id) => {
      state.blocks.delete(id);
      for (const record of agents.values()) record.attached.delete(id);
    },
    onMessage: undefined,
    settleRuns: () => {
      for (const apply of [...heldStatuses]) apply();
    },
    waitForRequests: (count, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        if (state.messageRequests().length >= count) return resolve(state.messageRequests());
        const timer = setTimeout(() => reject(new Error(`Letta stand-in: expected ${count} message requests, got ${state.messageRequests().length}`)), timeoutMs);
        waiters.push({
          count,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      }),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.destroyed || res.headersSent) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };
  const errorBody = (status: number, message: string, shape: 'detail' | 'error' = 'detail') =>
    shape === 'error' ? { error: { type: errorType(status), message, detail: null } } : { detail: message };
  const refuse = (res: ServerResponse, step: LettaStep) => send(res, step.status!, step.body ?? errorBody(step.status!, `stand-in error ${step.status}`, step.shape), step.headers);
  const now = () => new Date().toISOString();

  /** Runs a run to its end: think, then answer as the step says. `deferStatus`: leave the final status to the caller (a stream's finalizer). */
  const execute = async (agentId: string, run: RunRecord, step: LettaStep, input: LettaMessageRecord | undefined, approved?: { approve: boolean; tool: string }, deferStatus = false): Promise<void> => {
    const agent = agentRecord(agentId);
    agent.active++;
    agent.maxActive = Math.max(agent.maxActive, agent.active);
    maxConcurrent = Math.max(maxConcurrent, agent.active);
    run.status = 'running';
    if (input) agent.history.push(input);
    const think = step.delayMs ?? state.thinkMs;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, think);
      run.cancel = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    agent.active--;
    run.completed_at = now();
    if ((run.status as RunRecord['status']) === 'cancelled') {
      run.stop_reason = 'cancelled';
      return;
    }
    const out: LettaMessageRecord[] = [{ id: `message-${randomUUID()}`, message_type: 'reasoning_message', reasoning: 'thinking', date: now(), run_id: run.id }];
    const stop: StopReason = step.approval ? 'requires_approval' : (step.stopReason ?? 'end_turn');
    if (step.approval) {
      const call = { name: step.approval.name, arguments: step.approval.arguments ?? '{}', tool_call_id: `call_${randomUUID().slice(0, 8)}` };
      const message: LettaMessageRecord = { id: `message-${randomUUID()}`, message_type: 'approval_request_message', date: now(), run_id: run.id, tool_call: call, tool_calls: [call] };
      out.push(message);
      agent.pending = { requestId: message.id, toolCalls: [call] };
    } else {
      const defaultText = stop === 'end_turn' || stop === 'tool_rule' ? (approved ? state.afterApproval(approved.approve, approved.tool) : state.reply(typeof input?.content === 'string' ? input.content : '', agentId)) : '';
      const text = step.reply ?? defaultText;
      if (text !== '') out.push({ id: `message-${randomUUID()}`, message_type: 'assistant_message', content: text, date: now(), run_id: run.id });
    }
    agent.history.push(...out);
    run.messages = [...(input ? [input] : []), ...out];
    run.stop_reason = stop;
    run.usage = { ...state.usage };
    if (!deferStatus) run.status = stop === 'cancelled' ? 'cancelled' : FAILED.has(stop) ? 'failed' : 'completed';
  };

  /** A POST of messages: validation and the approval state machine, then a run. */
  const postMessages = async (req: IncomingMessage, res: ServerResponse, record: LettaRequest, agentId: string, mode: 'blocking' | 'async' | 'stream') => {
    const agent = agentRecord(agentId);
    const body = record.body as { messages?: Array<Record<string, unknown>>; background?: unknown; include_pings?: unknown } | undefined;
    const messages = body?.messages;
    if (!Array.isArray(messages) || messages.length === 0) return send(res, 422, { detail: [{ loc: ['body', 'messages'], msg: 'Field required', type: 'missing' }] });
    const background = mode === 'async' || (mode === 'stream' && body?.background === true);
    if (mode === 'stream' && background && options.streamRoute === 'no-redis') {
      // create_agent_stream makes the run, then finds no Redis: LettaServiceUnavailableError, run marked failed, 503 through _error_handler_503.
      const failed: RunRecord = { id: `run-${randomUUID()}`, agent_id: agentId, status: 'failed', stop_reason: null, background: true, created_at: now(), completed_at: null, messages: [], usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0 }, otid: (messages[0]!.otid as string | undefined) ?? null, kind: messages[0]!.type === 'approval' ? 'approval' : 'message' };
      state.runs.set(failed.id, failed);
      return send(res, 503, { detail: 'INTERNAL_SERVER_ERROR: Background streaming requires Redis to be running. Please ensure Redis is properly configured. LETTA_REDIS_HOST: None, LETTA_REDIS_PORT: 6379' });
    }
    const first = messages[0]!;
    const isApproval = first.type === 'approval';
    let step: LettaStep;
    let input: LettaMessageRecord | undefined;
    let approved: { approve: boolean; tool: string } | undefined;
    /** What the stream route meets inside its stream (the agent loop's first step) instead of refusing first: [error_type, message, detail]. */
    let inStream: [string, string, string] | undefined;
    const runId = `run-${randomUUID()}`;
    const newRun = (otid: string | null): RunRecord => ({ id: runId, agent_id: agentId, status: 'created', stop_reason: null, background, created_at: now(), completed_at: null, messages: [], usage: { ...state.usage }, otid, kind: isApproval ? 'approval' : 'message' });
    const pings = body?.include_pings !== false;
    /** A wrong approval answer: 400 on the other routes; on the stream, the loop's ValueError (not a LettaError, so the generic message). */
    const approvalRefusal = (detail: string, valueError: string) => {
      if (mode !== 'stream') return send(res, 400, { detail });
      const run = newRun((first.otid as string | undefined) ?? null);
      state.runs.set(run.id, run);
      return streamMessages(req, res, record, agentId, run, {}, undefined, undefined, background, pings, ['internal_error', 'An unknown error occurred with the LLM streaming request.', valueError]);
    };
    const pyList = (ids: string[]) => `[${ids.map((id) => `'${id}'`).join(', ')}]`;
    if (isApproval) {
      if (!agent.pending) return approvalRefusal('No tool call is currently awaiting approval.', 'Cannot process approval response: No tool call is currently awaiting approval. Please send a regular message to interact with the agent.');
      const pending = agent.pending;
      let decisions: Array<{ id: string; approve: boolean; reason?: string }>;
      if (Array.isArray(first.approvals)) {
        if (state.approvalForms === 'legacy') return send(res, 422, { detail: [{ loc: ['body', 'messages', 0, 'approval_request_id'], msg: 'Field required', type: 'missing' }] });
        decisions = (first.approvals as Array<Record<string, unknown>>).map((a) => ({ id: String(a.tool_call_id), approve: a.approve === true, reason: a.reason as string | undefined }));
        const expected = pending.toolCalls.map((c) => c.tool_call_id).sort().join(',');
        if (decisions.map((d) => d.id).sort().join(',') !== expected) return approvalRefusal(`Invalid tool call IDs: expected ${expected}`, `Invalid tool call IDs. Expected '${pyList(pending.toolCalls.map((c) => c.tool_call_id))}', but received '${pyList(decisions.map((d) => d.id))}'.`);
        state.approvalAnswers.push({ agent: agentId, form: 'current', toolCallIds: decisions.map((d) => d.id), approve: decisions.every((d) => d.approve), reason: decisions[0]?.reason });
      } else if (typeof first.approval_request_id === 'string') {
        if (first.approval_request_id !== pending.requestId) return approvalRefusal(`Invalid approval request ID ${first.approval_request_id}`, `Invalid tool call IDs. Expected '${pyList(pending.toolCalls.map((c) => c.tool_call_id))}', but received '${pyList([first.approval_request_id])}'.`);
        decisions = pending.toolCalls.map((c) => ({ id: c.tool_call_id, approve: first.approve === true, reason: first.reason as string | undefined }));
        state.approvalAnswers.push({ agent: agentId, form: 'legacy', toolCallIds: decisions.map((d) => d.id), approve: first.approve === true, reason: first.reason as string | undefined });
      } else return send(res, 422, { detail: [{ loc: ['body', 'messages', 0], msg: 'approval needs approvals or approval_request_id', type: 'value_error' }] });
      agent.pending = undefined;
      step = approvalSteps.shift() ?? {};
      approved = { approve: decisions.every((d) => d.approve), tool: pending.toolCalls[0]!.name };
      input = { id: `message-${randomUUID()}`, message_type: 'approval_response_message', date: now(), run_id: runId, otid: (first.otid as string | undefined) ?? null, approvals: first.approvals ?? null, approve: first.approve ?? null };
    } else {
      step = steps.shift() ?? state.fallback ?? {};
      if (step.drop) return void req.socket.destroy();
      if (step.acceptDelayMs) await new Promise((r) => setTimeout(r, step.acceptDelayMs));
      if (agent.pending && mode === 'stream') {
        // No check before the stream: the loop's first step raises PendingApprovalError, a LettaError, so its text ("CODE: message") is shown.
        const text = 'CONFLICT: Cannot send a new message: The agent is waiting for approval on a tool call. Please approve or deny the pending request before continuing.';
        inStream = ['internal_error', text, text];
      } else if (agent.pending) {
        return send(res, 409, { detail: { code: 'PENDING_APPROVAL', message: 'Cannot send a new message: the agent is waiting for approval on a tool call. Please approve or deny the pending request before continuing.', pending_request_id: agent.pending.requestId } });
      }
      if (step.status && step.status !== 200) return refuse(res, step);
      const content = first.content;
      if (typeof content !== 'string' && !Array.isArray(content)) return send(res, 422, { detail: [{ loc: ['body', 'messages', 0, 'content'], msg: 'Field required', type: 'missing' }] });
      input = { id: `message-${randomUUID()}`, message_type: 'user_message', date: now(), run_id: runId, otid: (first.otid as string | undefined) ?? null, content, sender_id: first.sender_id as string | undefined };
    }
    const run = newRun(input.otid ?? null);
    state.runs.set(run.id, run);
    if (mode === 'stream') return streamMessages(req, res, record, agentId, run, step, input, approved, background, pings, inStream);
    const finished = execute(agentId, run, step, input, approved).then(() => {
      record.answeredAt = performance.now();
    });
    if (step.dropAfterStart) return void req.socket.destroy();
    if (step.answerDelayMs) await new Promise((r) => setTimeout(r, step.answerDelayMs));
    if (mode === 'async') return send(res, 200, runBody(run));
    await finished;
    return send(res, 200, { messages: run.messages.filter((m) => m.message_type !== 'user_message' && m.message_type !== 'approval_response_message'), stop_reason: { message_type: 'stop_reason', stop_reason: run.stop_reason }, usage: { message_type: 'usage_statistics', ...run.usage } });
  };

  /** The finalizer's status update, which lands after the terminal chunk was stored (see `statusLagMs`). */
  const heldStatuses = new Set<() => void>();
  /** The stored chunks of background streams (Redis `sse:run:{id}`), for /v1/runs/{id}/stream. */
  const logs = new Map<string, RunLog>();
  const reader = (step: LettaStep = {}) => ({ keepaliveMs: options.keepaliveMs ?? 20_000, maxSilenceMs: options.maxStreamSilenceMs ?? 1_800_000, answerDelayMs: step.answerDelayMs, dropAfterFirst: step.dropMidStream, stallMs: step.stallMs });
  const finalize = (run: RunRecord, status: RunRecord['status'], stop: StopReason) => {
    const completedAt = run.completed_at ?? now();
    run.status = 'running';
    run.stop_reason = null;
    run.completed_at = null;
    const apply = () => {
      if (!heldStatuses.delete(apply)) return;
      Object.assign(run, { status, stop_reason: stop, completed_at: completedAt });
    };
    heldStatuses.add(apply);
    if (options.statusLagMs) setTimeout(apply, options.statusLagMs).unref();
    else setImmediate(apply);
  };

  /**
   * A run behind /messages/stream. Its chunks go to a log (Redis in background mode) that the
   * HTTP answer reads, so the run goes on whatever happens to the connection.
   */
  const streamMessages = (req: IncomingMessage, res: ServerResponse, record: LettaRequest, agentId: string, run: RunRecord, step: LettaStep, input: LettaMessageRecord | undefined, approved: { approve: boolean; tool: string } | undefined, background: boolean, pings: boolean, failure?: [string, string, string]) => {
    const log = new RunLog();
    if (background) logs.set(run.id, log);
    const stopChunk = (stop: StopReason) => data(JSON.stringify({ message_type: 'stop_reason', stop_reason: stop }));
    // error_aware_stream writes stop_reason, `event: error`, [DONE]; in background the error chunk is stored as the last one, so readers end there.
    const fail = (stop: StopReason, errorType: string, message: string, detail: string) => {
      log.write(stopChunk(stop));
      log.write(errorEvent(run.id, errorType, message, detail), background);
      log.write(DONE, true);
      record.answeredAt = performance.now();
      finalize(run, 'failed', stop);
    };
    if (pings) log.write(data(pingJson(run.id, null)));
    run.status = 'running';
    // An error in the loop's first step, before any chunk (the input is not kept).
    if (failure) fail('error', ...failure);
    else {
      const thinkUntil = Date.now() + (step.delayMs ?? state.thinkMs);
      void execute(agentId, run, step, input, approved, true).then(async () => {
        if (run.status === 'cancelled') {
          // cancellation_aware_stream_wrapper sees the cancel at the next chunk, after the step in flight: its own json.dumps stop_reason, then [DONE].
          await new Promise((r) => setTimeout(r, Math.max(0, thinkUntil - Date.now())));
          log.write(data('{"message_type": "stop_reason", "stop_reason": "cancelled"}'), !background);
          if (background) log.write(DONE, true);
          record.answeredAt = performance.now();
          return;
        }
        const stop = run.stop_reason!;
        const thrown = STREAM_ERRORS[stop];
        if (thrown) {
          const [type, message] = stop === 'llm_api_error' && step.errorType ? [step.errorType, LLM_ERRORS[step.errorType]] : thrown;
          return fail(stop, type, message, `stand-in ${type}`);
        }
        for (const message of run.messages) if (message.message_type !== 'user_message' && message.message_type !== 'approval_response_message') log.write(data(messageJson(message)));
        // get_finish_chunks_for_stream: stop_reason, usage_statistics, [DONE].
        log.write(stopChunk(stop));
        log.write(data(JSON.stringify({ message_type: 'usage_statistics', ...run.usage, run_ids: null, cached_input_tokens: null, cache_write_tokens: null, reasoning_tokens: null, context_tokens: null })));
        log.write(DONE, true);
        record.answeredAt = performance.now();
        finalize(run, STREAM_FAILED.has(stop) ? 'failed' : 'completed', stop);
      });
    }
    if (step.dropAfterStart) return void req.socket.destroy();
    streamRun(res, log, { runId: run.id, background, pings, ...reader(step) });
  };

  const memory = (route: MemoryRoute, res: ServerResponse): boolean => {
    const step = memorySteps[route].shift();
    if (!step) return false;
    if (step.drop) {
      res.socket?.destroy();
      return true;
    }
    refuse(res, { status: 500, ...step });
    return true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const record: LettaRequest = { method, path, query: url.searchParams, body, authorization: req.headers.authorization, at: performance.now() };
    const post = /^\/v1\/agents\/([^/]+)\/messages(\/async|\/stream)?\/?$/.exec(path);
    if (post && method === 'POST') {
      const first = (body as { messages?: Array<Record<string, unknown>> })?.messages?.[0];
      if (first && first.type !== 'approval') {
        const content = first.content;
        record.text = typeof content === 'string' ? content : JSON.stringify(content ?? '');
        record.otid = first.otid as string | undefined;
        record.senderId = first.sender_id as string | undefined;
      }
    }
    state.requests.push(record);
    if (record.text !== undefined) {
      state.onMessage?.(record);
      // Counted only for a waiter: a filter of every request on every message made a long benchmark's stand-in slower as it went.
      const count = waiters.length > 0 ? state.messageRequests().length : 0;
      for (const waiter of waiters.splice(0)) {
        if (count >= waiter.count) waiter.resolve(state.messageRequests());
        else waiters.push(waiter);
      }
    }

    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return send(res, 401, { error: { type: 'authentication_error', message: 'Invalid API key', detail: 'The API key is not valid for this organization' } });
    }
    if (options.streamRoute === 'no-route' && post?.[2] === '/stream' && method === 'POST') {
      // Routing comes before any validation; the path still matches PATCH /v1/agents/{agent_id}/messages/{message_id}, so Starlette answers 405.
      return send(res, 405, { detail: 'Method Not Allowed' }, { allow: 'PATCH' });
    }
    const agentId = /^\/v1\/agents\/([^/]+)/.exec(path)?.[1];
    if (agentId !== undefined) {
      if (!AGENT_ID.test(agentId)) return send(res, 422, { detail: [{ loc: ['path', 'agent_id'], msg: `String should match pattern '^agent-[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-4[a-fA-F0-9]{3}-[89abAB][a-fA-F0-9]{3}-[a-fA-F0-9]{12}$'`, type: 'string_pattern_mismatch' }] });
      if (options.agents && !options.agents.includes(agentId)) return send(res, 404, { detail: `Agent ${agentId} not found` });
    }

    if (post && method === 'POST') return postMessages(req, res, record, agentId!, post[2] === '/async' ? 'async' : post[2] === '/stream' ? 'stream' : 'blocking');

    const cancel = /^\/v1\/agents\/([^/]+)\/messages\/cancel\/?$/.exec(path);
    if (cancel && method === 'POST') {
      const ids = (body as { run_ids?: string[] } | undefined)?.run_ids;
      const cancelled: string[] = [];
      for (const run of state.runs.values()) {
        if (run.agent_id !== agentId || (run.status !== 'created' && run.status !== 'running')) continue;
        if (ids && !ids.includes(run.id)) continue;
        run.status = 'cancelled';
        run.cancel?.();
        cancelled.push(run.id);
      }
      return send(res, 200, Object.fromEntries(cancelled.map((id) => [id, 'cancelled'])));
    }
    const history = /^\/v1\/agents\/([^/]+)\/messages\/?$/.exec(path);
    if (history && method === 'GET') {
      const limit = Number(url.searchParams.get('limit') ?? 100);
      const list = [...agentRecord(agentId!).history];
      const ordered = url.searchParams.get('order') === 'asc' ? list : list.reverse();
      return send(res, 200, ordered.slice(0, limit));
    }
    const block = /^\/v1\/agents\/([^/]+)\/core-memory\/blocks\/(attach|detach)\/([^/]+)$/.exec(path);
    if (block && method === 'PATCH') {
      const [, , action, blockId] = block as unknown as [string, string, 'attach' | 'detach', string];
      if (memory(action, res)) return;
      if (!BLOCK_ID.test(blockId)) return send(res, 422, { detail: [{ loc: ['path', 'block_id'], msg: 'String should match pattern block-<uuid4>', type: 'string_pattern_mismatch' }] });
      if (!state.blocks.has(blockId)) return send(res, 404, { detail: `Block ${blockId} not found` });
      const attached = agentRecord(agentId!).attached;
      if (action === 'attach') attached.add(blockId);
      else attached.delete(blockId);
      return send(res, 200, { id: agentId, name: 'stand-in agent', blocks: [...attached].map((id) => ({ id })) });
    }
    if (agentId && path === `/v1/agents/${agentId}` && method === 'GET') return send(res, 200, { id: agentId, name: 'stand-in agent' });

    if ((path === '/v1/runs/active' || ((path === '/v1/runs' || path === '/v1/runs/') && url.searchParams.get('active') === 'true')) && method === 'GET') {
      const agent = url.searchParams.get('agent_id');
      return send(res, 200, [...state.runs.values()].filter((run) => (!agent || run.agent_id === agent) && (run.status === 'created' || run.status === 'running')).map(runBody));
    }
    const resume = /^\/v1\/runs\/(run-[^/]+)\/stream\/?$/.exec(path);
    if (resume && method === 'POST') {
      // retrieve_stream_for_run (letta/server/rest_api/routers/v1/runs.py): no initial ping, keepalives if include_pings.
      const found = state.runs.get(resume[1]!);
      if (!found) return send(res, 404, { detail: `Run ${resume[1]} not found` });
      if (!found.background) return send(res, 400, { detail: 'INVALID_ARGUMENT: Run was not created in background mode, so it cannot be retrieved.' });
      if (options.streamRoute === 'no-redis') return send(res, 503, { detail: 'Background streaming requires Redis to be running. Please ensure Redis is properly configured. LETTA_REDIS_HOST: None, LETTA_REDIS_PORT: 6379' });
      const b = (body ?? {}) as { starting_after?: number; include_pings?: boolean };
      // An /async run stored no chunks: its reader polls an empty stream, pings only, until the silence limit.
      return streamRun(res, logs.get(found.id) ?? new RunLog(), { runId: found.id, background: true, pings: b.include_pings !== false, startAfter: b.starting_after ?? 0, ...reader() });
    }
    const run = /^\/v1\/runs\/(run-[^/]+)(\/messages|\/usage)?\/?$/.exec(path);
    if (run && method === 'GET') {
      const found = state.runs.get(run[1]!);
      if (!found) return send(res, 404, { detail: `Run ${run[1]} not found` });
      if (run[2] === '/messages') return send(res, 200, found.messages);
      if (run[2] === '/usage') return send(res, 200, { completion_tokens: found.usage.completion_tokens, prompt_tokens: found.usage.prompt_tokens, total_tokens: found.usage.total_tokens });
      return send(res, 200, runBody(found));
    }

    const trimmed = path.replace(/\/$/, '');
    if (trimmed === '/v1/identities' && method === 'POST') {
      if (memory('identity', res)) return;
      const b = body as { identifier_key?: string; name?: string; identity_type?: string };
      if (!b?.identifier_key || !b.name || !b.identity_type) return send(res, 422, { detail: [{ loc: ['body', 'identifier_key'], msg: 'Field required', type: 'missing' }] });
      if ([...state.identities.values()].some((i) => i.identifier_key === b.identifier_key)) return send(res, 409, { detail: `Identity with identifier key ${b.identifier_key} already exists` });
      const identity = { id: `identity-${randomUUID()}`, identifier_key: b.identifier_key, name: b.name, identity_type: b.identity_type };
      state.identities.set(identity.id, identity);
      return send(res, 200, identity);
    }
    if (trimmed === '/v1/identities' && method === 'GET') {
      const key = url.searchParams.get('identifier_key');
      return send(res, 200, [...state.identities.values()].filter((i) => !key || i.identifier_key === key));
    }
    if (trimmed === '/v1/blocks' && method === 'POST') {
      if (memory('block', res)) return;
      const b = body as { label?: string; value?: string };
      if (typeof b?.label !== 'string' || typeof b.value !== 'string') return send(res, 422, { detail: [{ loc: ['body', 'value'], msg: 'Field required', type: 'missing' }] });
      const made = { id: `block-${randomUUID()}`, label: b.label, value: b.value };
      state.blocks.set(made.id, made);
      return send(res, 200, made);
    }
    const oneBlock = /^\/v1\/blocks\/([^/]+)$/.exec(path);
    if (oneBlock && (method === 'GET' || method === 'DELETE')) {
      const id = oneBlock[1]!;
      if (!BLOCK_ID.test(id)) return send(res, 422, { detail: [{ loc: ['path', 'block_id'], msg: 'String should match pattern block-<uuid4>', type: 'string_pattern_mismatch' }] });
      const found = state.blocks.get(id);
      if (!found) return send(res, 404, { detail: `Block ${id} not found` });
      if (method === 'DELETE') state.deleteBlock(id);
      return send(res, 200, found);
    }
    return send(res, 404, { detail: `no route ${method} ${path}` });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      send(res, 500, { detail: String(error) });
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://${host}:${state.port}`;
  return state;
}

function runBody(run: RunRecord) {
  return { id: run.id, agent_id: run.agent_id, status: run.status, stop_reason: run.stop_reason, background: run.background, created_at: run.created_at, completed_at: run.completed_at };
}

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 402) return 'payment_required';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'internal_server_error';
  return 'invalid_request_error';
}
