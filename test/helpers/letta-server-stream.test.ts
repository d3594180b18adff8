import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startLettaServer, type LettaServer, type LettaServerOptions } from './letta-server.js';

// The stand-in's background stream, spoken to with plain node:http: the wire as Letta 0.16.8 writes it.

const KEY = 'sk-let-4f9a1c2e8b7d';
const AGENT = 'agent-6a1f0c3e-9b2d-4e7f-8a5c-1d3e5f7a9b0c';
const OTID = '3f2e1d0c-4b5a-4c6d-9e8f-7a6b5c4d3e2f';
let letta: LettaServer | undefined;

afterEach(async () => {
  await letta?.close();
  letta = undefined;
});

async function start(options: LettaServerOptions = {}): Promise<LettaServer> {
  letta = await startLettaServer({ apiKey: KEY, agents: [AGENT], ...options });
  return letta;
}

interface SseEvent {
  event?: string;
  data: string;
  json?: Record<string, unknown>;
}

interface StreamAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** performance.now() when the status line arrived. */
  headersAt: number;
  events: SseEvent[];
  raw: string;
  /** How the answer ended: the body ended, or the connection was cut. */
  ended: Promise<'end' | 'reset'>;
  /** Resolves at the first event that matches. */
  until(match: (event: SseEvent) => boolean): Promise<SseEvent>;
}

const streamBody = (text: string, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: 'user', content: text, otid: OTID, sender_id: 'identity-7c1d' }],
  streaming: true,
  stream_tokens: false,
  background: true,
  include_pings: true,
  ...extra,
});

function parse(block: string): SseEvent {
  const event: SseEvent = { data: '' };
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event.event = line.slice(7);
    else if (line.startsWith('data: ')) event.data = line.slice(6);
  }
  if (event.data.startsWith('{')) event.json = JSON.parse(event.data) as Record<string, unknown>;
  return event;
}

/** POSTs to the stream route; resolves at the status line (or rejects when the connection is cut before it). */
function post(server: LettaServer, body: unknown, { path = `/v1/agents/${AGENT}/messages/stream`, key = KEY } = {}): Promise<StreamAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${server.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } }, (res) => {
      const waiting: Array<{ match: (e: SseEvent) => boolean; resolve: (e: SseEvent) => void }> = [];
      let buffer = '';
      const answer: StreamAnswer = {
        status: res.statusCode!,
        headers: res.headers,
        headersAt: performance.now(),
        events: [],
        raw: '',
        ended: new Promise((done) => {
          res.on('end', () => done('end'));
          res.on('error', () => done('reset'));
          res.on('aborted', () => done('reset'));
        }),
        until: (match) =>
          new Promise((found) => {
            const seen = answer.events.find(match);
            if (seen) return found(seen);
            waiting.push({ match, resolve: found });
          }),
      };
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        answer.raw += chunk;
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          answer.events.push(event);
          for (const w of waiting.splice(0)) {
            if (w.match(event)) w.resolve(event);
            else waiting.push(w);
          }
        }
      });
      resolve(answer);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function getJson(server: LettaServer, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${KEY}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls a run until its status is final (no timing asserted: it only waits). */
async function settled(server: LettaServer, runId: string): Promise<Record<string, unknown>> {
  for (;;) {
    const { body } = await getJson(server, `/v1/runs/${runId}`);
    if (body.status !== 'created' && body.status !== 'running') return body;
    await new Promise((r) => setTimeout(r, 10));
  }
}

const kinds = (answer: StreamAnswer) => answer.events.map((e) => (e.event === 'error' ? 'error' : e.json ? String(e.json.message_type) : e.data));
const withoutKeepalives = (answer: StreamAnswer) => answer.events.filter((e, i) => i === 0 || e.json?.message_type !== 'ping');

describe('POST /v1/agents/{id}/messages/stream (background)', () => {
  it('names the run in a first ping, then the run messages, stop_reason, usage and [DONE], each stored chunk numbered by seq_id', async () => {
    const server = await start();
    const answer = await post(server, streamBody('hello'));
    expect(await answer.ended).toBe('end');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(answer.headers['content-length']).toBeUndefined();
    expect(answer.raw.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(kinds(answer)).toEqual(['ping', 'reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);

    const [run] = [...server.runs.values()];
    const [ping, reasoning, assistant, stop, usage] = answer.events.map((e) => e.json!);
    expect(ping).toMatchObject({ message_type: 'ping', run_id: run!.id, seq_id: 1 });
    expect(String(ping!.id)).toMatch(/^ping-[0-9a-f-]{36}$/);
    expect(String(ping!.date)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect(reasoning).toMatchObject({ run_id: run!.id, seq_id: 2 });
    expect(assistant).toMatchObject({ content: 'echo: hello', run_id: run!.id, seq_id: 3 });
    // Their schemas have no run_id/seq_id: the reader passes them as stored.
    expect(stop).toEqual({ message_type: 'stop_reason', stop_reason: 'end_turn' });
    expect(usage).toMatchObject({ message_type: 'usage_statistics', prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, step_count: 1 });
    expect(usage).not.toHaveProperty('seq_id');
    expect(answer.events.some((e) => e.json?.message_type === 'user_message')).toBe(false);

    expect(run).toMatchObject({ agent_id: AGENT, background: true, otid: OTID, kind: 'message' });
    expect(await settled(server, run!.id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn', background: true });
    const [request] = server.messageRequests();
    expect(request).toMatchObject({ path: `/v1/agents/${AGENT}/messages/stream`, text: 'hello', otid: OTID, senderId: 'identity-7c1d' });
    expect(request!.answeredAt).toBeGreaterThan(request!.at);
    expect(server.deliveriesOf(AGENT, OTID)).toBe(1);
  });

  it('sends the ping at once and keepalive pings while the run thinks, each with the last seq_id seen and no number of its own', async () => {
    const server = await start({ keepaliveMs: 20 });
    server.script({ delayMs: 400 });
    const answer = await post(server, streamBody('slow'));
    const first = await answer.until(() => true);
    expect(first.json).toMatchObject({ message_type: 'ping', seq_id: 1 });
    await answer.ended;
    const keepalives = answer.events.slice(1).filter((e) => e.json?.message_type === 'ping');
    expect(keepalives.length).toBeGreaterThan(0);
    for (const ping of keepalives) expect(ping.json).toMatchObject({ run_id: first.json!.run_id, seq_id: 1 });
    expect(kinds({ ...answer, events: withoutKeepalives(answer) })).toEqual(['ping', 'reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(withoutKeepalives(answer)[1]!.json).toMatchObject({ seq_id: 2 });
  });

  it('without include_pings sends nothing until the run has chunks, and no pings at all', async () => {
    const server = await start({ keepaliveMs: 20 });
    server.script({ delayMs: 200 });
    const answer = await post(server, streamBody('quiet', { include_pings: false }));
    // The status line itself waits for the first chunk (StreamingResponseWithStatusCode).
    expect(server.messageRequests()[0]!.answeredAt).toBeLessThan(answer.headersAt);
    await answer.ended;
    expect(kinds(answer)).toEqual(['reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(answer.events[0]!.json).toMatchObject({ seq_id: 1 });
  });

  it('without background leaves seq_id null (no Redis in between) and records the run as foreground', async () => {
    const server = await start();
    const answer = await post(server, streamBody('fg', { background: false }));
    await answer.ended;
    expect(kinds(answer)).toEqual(['ping', 'reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(answer.events[0]!.json).toMatchObject({ seq_id: null });
    expect(answer.events[2]!.json).toMatchObject({ seq_id: null, content: 'echo: fg' });
    const [run] = [...server.runs.values()];
    expect(run!.background).toBe(false);
  });

  it.each([
    ['insufficient_credits', 'failed'],
    ['max_steps', 'completed'],
    ['max_tokens_exceeded', 'failed'],
    ['no_tool_call', 'failed'],
  ] as const)('stop reason %s ends with stop_reason, usage and [DONE]; the run ends %s', async (stopReason, status) => {
    const server = await start();
    server.script({ stopReason });
    const answer = await post(server, streamBody('x'));
    await answer.ended;
    expect(kinds(answer)).toEqual(['ping', 'reasoning_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(answer.events[2]!.json).toEqual({ message_type: 'stop_reason', stop_reason: stopReason });
    expect(await settled(server, String(answer.events[0]!.json!.run_id))).toMatchObject({ status, stop_reason: stopReason });
  });

  it('an LLM error: stop_reason, then an error event that ends a background stream (its [DONE] is stored after the last chunk readers take)', async () => {
    const server = await start();
    server.script({ stopReason: 'llm_api_error' }, { stopReason: 'llm_api_error', errorType: 'llm_rate_limit' }, { stopReason: 'error' });
    const answer = await post(server, streamBody('x'));
    expect(await answer.ended).toBe('end');
    expect(kinds(answer)).toEqual(['ping', 'stop_reason', 'error']);
    const runId = String(answer.events[0]!.json!.run_id);
    expect(answer.events[1]!.json).toEqual({ message_type: 'stop_reason', stop_reason: 'llm_api_error' });
    expect(answer.raw).toContain('event: error\ndata: {"message_type":"error_message"');
    expect(answer.events[2]!.json).toEqual({ message_type: 'error_message', run_id: runId, error_type: 'llm_error', message: 'An error occurred with the LLM request.', detail: 'stand-in llm_error', seq_id: 3 });
    expect(await settled(server, runId)).toMatchObject({ status: 'failed', stop_reason: 'llm_api_error' });

    const limited = await post(server, streamBody('y'));
    await limited.ended;
    expect(limited.events[2]!.json).toMatchObject({ error_type: 'llm_rate_limit', message: 'Rate limit exceeded for LLM model provider. Please wait before making another request.' });

    const internal = await post(server, streamBody('z', { background: false }));
    await internal.ended;
    // In the foreground the client reads error_aware_stream itself, [DONE] included.
    expect(kinds(internal)).toEqual(['ping', 'stop_reason', 'error', '[DONE]']);
    expect(internal.events[2]!.json).toMatchObject({ error_type: 'internal_error', seq_id: null });
  });

  it('a pending approval, or a wrong answer to one, is met inside the stream: 200, then stop_reason error and an error event; the right answer runs the tool', async () => {
    const server = await start();
    server.script({ approval: { name: 'send_email', arguments: '{"to":"a"}' } });
    const asked = await post(server, streamBody('mail it'));
    await asked.ended;
    expect(kinds(asked)).toEqual(['ping', 'reasoning_message', 'approval_request_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(asked.events[3]!.json).toEqual({ message_type: 'stop_reason', stop_reason: 'requires_approval' });
    const request = asked.events[2]!.json!;
    expect(request).toMatchObject({ tool_call: { name: 'send_email', arguments: '{"to":"a"}' } });
    expect(await settled(server, String(request.run_id))).toMatchObject({ status: 'completed', stop_reason: 'requires_approval' });

    const refused = await post(server, streamBody('another'));
    expect(refused.status).toBe(200);
    await refused.ended;
    expect(kinds(refused)).toEqual(['ping', 'stop_reason', 'error']);
    expect(refused.events[1]!.json).toEqual({ message_type: 'stop_reason', stop_reason: 'error' });
    expect(refused.events[2]!.json).toMatchObject({ error_type: 'internal_error', message: expect.stringMatching(/^CONFLICT: Cannot send a new message: The agent is waiting for approval/) });
    expect(await settled(server, String(refused.events[0]!.json!.run_id))).toMatchObject({ status: 'failed', stop_reason: 'error' });
    expect(server.pendingApproval(AGENT)).toBeDefined();

    const toolCallId = String((request.tool_call as { tool_call_id: string }).tool_call_id);
    const approval = (id: string) => ({ messages: [{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: id, approve: true }] }], streaming: true, background: true, include_pings: true });
    const wrong = await post(server, approval('call_0000'));
    expect(wrong.status).toBe(200);
    await wrong.ended;
    expect(kinds(wrong)).toEqual(['ping', 'stop_reason', 'error']);
    expect(wrong.events[2]!.json).toMatchObject({ error_type: 'internal_error', message: 'An unknown error occurred with the LLM streaming request.', detail: `Invalid tool call IDs. Expected '['${toolCallId}']', but received '['call_0000']'.` });
    expect(server.pendingApproval(AGENT)).toBeDefined();

    const answered = await post(server, approval(toolCallId));
    await answered.ended;
    expect(answered.events.find((e) => e.json?.message_type === 'assistant_message')?.json).toMatchObject({ content: 'done: send_email ran' });
    expect(server.approvalAnswers).toEqual([expect.objectContaining({ form: 'current', approve: true, toolCallIds: [toolCallId] })]);
    expect(server.pendingApproval(AGENT)).toBeUndefined();

    const late = await post(server, approval(toolCallId));
    await late.ended;
    expect(late.events[2]!.json).toMatchObject({ error_type: 'internal_error', detail: expect.stringMatching(/^Cannot process approval response: No tool call is currently awaiting approval/) });
  });

  it('refuses as JSON with its status before any stream: 422, 401, 404, scripted statuses', async () => {
    const server = await start();
    server.script({ status: 429, shape: 'error' });
    const scripted = await post(server, streamBody('x'));
    expect(scripted.status).toBe(429);
    expect(scripted.headers['content-type']).toBe('application/json');
    await scripted.ended;
    expect(JSON.parse(scripted.raw)).toEqual({ error: { type: 'rate_limit_error', message: 'stand-in error 429', detail: null } });

    const missing = await post(server, { streaming: true, background: true });
    expect(missing.status).toBe(422);
    const unauthorized = await post(server, streamBody('x'), { key: 'sk-let-0000aaaa1111' });
    expect(unauthorized.status).toBe(401);
    const unknown = await post(server, streamBody('x'), { path: '/v1/agents/agent-0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70/messages/stream' });
    expect(unknown.status).toBe(404);
    await unknown.ended;
    expect(JSON.parse(unknown.raw)).toEqual({ detail: 'Agent agent-0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70 not found' });
    const badId = await post(server, streamBody('x'), { path: '/v1/agents/agent-1234/messages/stream' });
    expect(badId.status).toBe(422);
    expect(server.runs.size).toBe(0);
  });

  it('dropAfterStart: the run is made and the connection cut before any byte; the run goes on', async () => {
    const server = await start();
    server.script({ dropAfterStart: true, delayMs: 50 });
    await expect(post(server, streamBody('lost'))).rejects.toThrow(/socket hang up|ECONNRESET/);
    const [run] = [...server.runs.values()];
    expect(await settled(server, run!.id)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    expect(server.deliveriesOf(AGENT, OTID)).toBe(1);
  });

  it('dropMidStream: the ping naming the run arrives, then the connection is cut; the run goes on', async () => {
    const server = await start();
    server.script({ dropMidStream: true, delayMs: 50 });
    const answer = await post(server, streamBody('cut'));
    expect(answer.status).toBe(200);
    expect(await answer.ended).toBe('reset');
    expect(kinds(answer)).toEqual(['ping']);
    const runId = String(answer.events[0]!.json!.run_id);
    expect(await settled(server, runId)).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
    const { body } = await getJson(server, `/v1/runs/${runId}/messages`);
    expect(body).toEqual(expect.arrayContaining([expect.objectContaining({ message_type: 'assistant_message', content: 'echo: cut' })]));
  });

  it('POST /v1/runs/{id}/stream reads a background stream again after starting_after; 400 for a foreground run, 404 for none', async () => {
    const server = await start();
    server.script({ dropMidStream: true, delayMs: 50 });
    const cut = await post(server, streamBody('again'));
    await cut.ended;
    const runId = String(cut.events[0]!.json!.run_id);
    const resumed = await post(server, { starting_after: 1 }, { path: `/v1/runs/${runId}/stream` });
    expect(resumed.status).toBe(200);
    await resumed.ended;
    expect(kinds(resumed)).toEqual(['reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
    expect(resumed.events[1]!.json).toMatchObject({ content: 'echo: again', seq_id: 3, run_id: runId });
    const whole = await post(server, {}, { path: `/v1/runs/${runId}/stream` });
    await whole.ended;
    expect(whole.events[0]!.json).toMatchObject({ message_type: 'ping', seq_id: 1 });

    const foreground = await post(server, streamBody('fg', { background: false }));
    await foreground.ended;
    const refused = await post(server, {}, { path: `/v1/runs/${String(foreground.events[0]!.json!.run_id)}/stream` });
    expect(refused.status).toBe(400);
    await refused.ended;
    expect(JSON.parse(refused.raw)).toEqual({ detail: 'INVALID_ARGUMENT: Run was not created in background mode, so it cannot be retrieved.' });
    expect((await post(server, {}, { path: '/v1/runs/run-0d9e8f7a-6b5c-4d3e-9f1a-2b3c4d5e6f70/stream' })).status).toBe(404);
  });

  it('an /async run stored no chunks: reading its stream gives pings only, until the silence limit ends it', async () => {
    const server = await start({ keepaliveMs: 10, maxStreamSilenceMs: 60 });
    const made = await post(server, streamBody('async'), { path: `/v1/agents/${AGENT}/messages/async` });
    await made.ended;
    const run = JSON.parse(made.raw) as { id: string };
    await settled(server, run.id);
    const answer = await post(server, {}, { path: `/v1/runs/${run.id}/stream` });
    expect(await answer.ended).toBe('end');
    expect(answer.events.length).toBeGreaterThan(0);
    expect(answer.events.every((e) => e.json?.message_type === 'ping' && e.json.seq_id === null)).toBe(true);
  });

  it('a retry with the same otid makes a second run: the agent route takes no lock, so no duplicate recovery and no CONVERSATION_BUSY', async () => {
    const server = await start();
    await (await post(server, streamBody('twice'))).ended;
    await (await post(server, streamBody('twice'))).ended;
    expect(server.runs.size).toBe(2);
    expect(server.deliveriesOf(AGENT, OTID)).toBe(2);
  });

  it('answerDelayMs: the first byte comes after the run already ended, and the stream still starts from its first chunk', async () => {
    const server = await start();
    server.script({ answerDelayMs: 200 });
    const answer = await post(server, streamBody('late'));
    expect(server.messageRequests()[0]!.answeredAt).toBeLessThan(answer.headersAt);
    await answer.ended;
    expect(kinds(answer)).toEqual(['ping', 'reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
  });

  it('stallMs: after the ping the stream writes nothing, keepalives included, then delivers what the run stored', async () => {
    const server = await start({ keepaliveMs: 10 });
    server.script({ stallMs: 300, delayMs: 50 });
    const answer = await post(server, streamBody('stuck'));
    await answer.ended;
    // The run ended during the stall (before its chunks reached the client), and no ping filled the silence.
    expect(kinds(answer)).toEqual(['ping', 'reasoning_message', 'assistant_message', 'stop_reason', 'usage_statistics', '[DONE]']);
  });

  it('a ping-only stream ends after maxStreamSilenceMs without a terminal event; the run goes on', async () => {
    const server = await start({ keepaliveMs: 10, maxStreamSilenceMs: 60 });
    server.script({ delayMs: 5000 });
    const answer = await post(server, streamBody('long'));
    expect(await answer.ended).toBe('end');
    expect(answer.events.every((e) => e.json?.message_type === 'ping')).toBe(true);
    const runId = String(answer.events[0]!.json!.run_id);
    expect(server.runs.get(runId)?.status).toBe('running');
  });

  it('names the run before it ends; a cancelled run ends its stream with the wrapper\'s stop_reason cancelled and [DONE]', async () => {
    const server = await start();
    server.script({ delayMs: 4000 });
    const answer = await post(server, streamBody('stop'));
    const ping = await answer.until(() => true);
    const runId = String(ping.json!.run_id);
    // The ping names the run at once, while it still thinks.
    expect(server.runs.get(runId)?.status).toBe('running');
    const cancelled = await fetch(`${server.url}/v1/agents/${AGENT}/messages/cancel`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ run_ids: [runId] }) });
    expect(await cancelled.json()).toEqual({ [runId]: 'cancelled' });
    await answer.ended;
    expect(kinds(withoutKeepalivesAnswer(answer))).toEqual(['ping', 'stop_reason', '[DONE]']);
    expect(answer.raw).toContain('data: {"message_type": "stop_reason", "stop_reason": "cancelled"}\n\n');
    expect((await getJson(server, `/v1/runs/${runId}`)).body).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
  });

  it('marks the run ended only after [DONE]: with a lag the run still reads running, until the finalizer lands', async () => {
    const server = await start({ statusLagMs: 60_000 });
    const answer = await post(server, streamBody('lag'));
    await answer.ended;
    const runId = String(answer.events[0]!.json!.run_id);
    expect((await getJson(server, `/v1/runs/${runId}`)).body).toMatchObject({ status: 'running', stop_reason: null, completed_at: null });
    const active = await fetch(`${server.url}/v1/runs/active?agent_id=${AGENT}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(((await active.json()) as Array<{ id: string }>).map((r) => r.id)).toEqual([runId]);
    server.settleRuns();
    expect((await getJson(server, `/v1/runs/${runId}`)).body).toMatchObject({ status: 'completed', stop_reason: 'end_turn' });
  });

  it("streamRoute 'no-route': the path matches only PATCH …/messages/{message_id}, so 405 Method Not Allowed; the other routes answer as before", async () => {
    const server = await start({ streamRoute: 'no-route' });
    server.script({ reply: 'via async' });
    const answer = await post(server, streamBody('x'));
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe('PATCH');
    await answer.ended;
    expect(JSON.parse(answer.raw)).toEqual({ detail: 'Method Not Allowed' });
    expect(server.runs.size).toBe(0);
    const async = await post(server, streamBody('x'), { path: `/v1/agents/${AGENT}/messages/async` });
    expect(async.status).toBe(200);
    await async.ended;
    const run = JSON.parse(async.raw) as { id: string };
    await settled(server, run.id);
    expect((await getJson(server, `/v1/runs/${run.id}/messages`)).body).toEqual(expect.arrayContaining([expect.objectContaining({ content: 'via async' })]));
  });

  it("streamRoute 'no-redis': background streams get the 503 of LettaServiceUnavailableError (the run made is failed); foreground streams still work", async () => {
    const server = await start({ streamRoute: 'no-redis' });
    server.script({ reply: 'kept for the next message' });
    const answer = await post(server, streamBody('x'));
    expect(answer.status).toBe(503);
    await answer.ended;
    expect(JSON.parse(answer.raw)).toEqual({ detail: 'INTERNAL_SERVER_ERROR: Background streaming requires Redis to be running. Please ensure Redis is properly configured. LETTA_REDIS_HOST: None, LETTA_REDIS_PORT: 6379' });
    const [failed] = [...server.runs.values()];
    expect(failed).toMatchObject({ status: 'failed', background: true });
    expect(server.deliveriesOf(AGENT, OTID)).toBe(0);

    const foreground = await post(server, streamBody('x', { background: false }));
    await foreground.ended;
    expect(foreground.events.find((e) => e.json?.message_type === 'assistant_message')?.json).toMatchObject({ content: 'kept for the next message', seq_id: null });
  });
});

function withoutKeepalivesAnswer(answer: StreamAnswer): StreamAnswer {
  return { ...answer, events: withoutKeepalives(answer) };
}
