import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { LettaClient, lettaBaseUrl } from '../../src/letta/client.js';
import { errorBodyText, LettaCallError } from '../../src/letta/errors.js';

const KEY = 'sk-let-4f9a1c2e8b7d';
const AGENT = 'agent-11111111-2222-4333-8444-555555555555';
let letta: LettaServer;
let client: LettaClient;
const call = (timeoutMs = 5000) => ({ signal: new AbortController().signal, timeoutMs });
const user = (content: string) => ({ role: 'user' as const, content, otid: '0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3' });

beforeAll(async () => {
  letta = await startLettaServer({ apiKey: KEY, agents: [AGENT] });
  client = new LettaClient({ endpoint: `${letta.url}/v1/`, apiKey: KEY, agentId: AGENT });
});
afterAll(async () => {
  client.close();
  await letta.close();
});

async function failure(promise: Promise<unknown>): Promise<LettaCallError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(LettaCallError);
    return error as LettaCallError;
  }
  throw new Error('expected the call to fail');
}

describe('lettaBaseUrl', () => {
  it.each([
    ['https://api.letta.com', 'https://api.letta.com'],
    ['https://api.letta.com/', 'https://api.letta.com'],
    ['https://host/v1', 'https://host'],
    ['https://host/v1/', 'https://host'],
    ['https://host/letta/v1', 'https://host/letta'],
  ])('%s → %s', (input, expected) => expect(lettaBaseUrl(input)).toBe(expected));
});

describe('error bodies', () => {
  it.each([
    [{ detail: 'Agent not found' }, 'Agent not found'],
    [{ detail: { code: 'PENDING_APPROVAL', message: 'waiting for approval' } }, 'PENDING_APPROVAL: waiting for approval'],
    [{ detail: [{ loc: ['path', 'agent_id'], msg: 'String should match pattern' }] }, 'path.agent_id: String should match pattern'],
    [{ error: { type: 'rate_limit_error', message: 'Rate limited', detail: 'try later' } }, 'Rate limited: try later'],
    [{ error: { type: 'authentication_error', message: 'Invalid API key', detail: null } }, 'Invalid API key'],
    [{ error: { type: 'internal_server_error' } }, 'internal_server_error'],
  ])('%j reads as "%s"', (body, text) => expect(errorBodyText(body)).toBe(text));
});

describe('LettaClient', () => {
  it('starts a background run with the message and its otid, then reads the run, its messages and usage', async () => {
    letta.script({ reply: 'first part' });
    const run = await client.createRun([user('[Username: @a, Telegram ID: 1] hi')], call());
    expect(run).toMatchObject({ id: expect.stringMatching(/^run-/), status: expect.stringMatching(/created|running/) });
    const request = letta.messageRequests().at(-1)!;
    expect(request.path).toBe(`/v1/agents/${AGENT}/messages/async`);
    expect(request.otid).toBe('0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3');
    let state = await client.getRun(run.id, call());
    while (state.status === 'created' || state.status === 'running') state = await client.getRun(run.id, call());
    expect(state).toMatchObject({ status: 'completed', stopReason: 'end_turn' });
    const messages = await client.runMessages(run.id, call());
    expect(messages.filter((m) => m.message_type === 'assistant_message').map((m) => m.content)).toEqual(['first part']);
    expect(await client.runUsage(run.id, call())).toEqual({ promptTokens: 10, completionTokens: 5, totalTokens: 15 });
    expect((await client.recentMessages(10, call())).find((m) => m.message_type === 'user_message')?.otid).toBe('0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3');
  });

  it('lists the runs still going on the agent and cancels them', async () => {
    letta.script({ delayMs: 60_000 });
    const run = await client.createRun([user('slow')], call());
    expect((await client.activeRuns(call())).map((r) => r.id)).toEqual([run.id]);
    await client.cancelRuns([run.id], call());
    expect(await client.getRun(run.id, call())).toMatchObject({ status: 'cancelled', stopReason: 'cancelled' });
    expect(await client.activeRuns(call())).toEqual([]);
  });

  it.each([
    [{ status: 500, shape: 'error' as const }, 'http_5xx', true, true],
    [{ status: 502, body: '<html>Bad Gateway</html>' }, 'http_5xx', true, true],
    [{ status: 409, body: { detail: 'database is locked' }, headers: { 'retry-after': '1' } }, 'http_4xx', true, false],
    [{ status: 429, shape: 'error' as const }, 'rate_limited', true, true],
    [{ status: 422, body: { detail: [{ msg: 'bad' }] } }, 'http_4xx', false, false],
    [{ status: 400 }, 'http_4xx', false, false],
  ])('classifies %j as %s (retryable %s, endpoint fault %s), one request, one prefix', async (step, kind, retryable, endpointFault) => {
    const before = letta.messageRequests().length;
    letta.script(step);
    const error = await failure(client.createRun([user('x')], call()));
    expect(error).toMatchObject({ kind, retryable, endpointFault, status: step.status });
    expect(error.message).toMatch(new RegExp(`^Letta answered ${step.status}: `));
    expect(error.message.match(/Letta answered/g)).toHaveLength(1);
    expect(letta.messageRequests().length).toBe(before + 1);
  });

  it('honours Retry-After (a database lock says 1 s) and has none for a provider 429', async () => {
    letta.script({ status: 409, body: { detail: 'database is locked' }, headers: { 'retry-after': '1' } }, { status: 429, body: { error: { type: 'rate_limit_error', message: 'provider rate limit' } } });
    expect(await failure(client.createRun([user('x')], call()))).toMatchObject({ retryAfterMs: 1000 });
    expect(await failure(client.createRun([user('x')], call()))).toMatchObject({ status: 429, retryAfterMs: undefined, message: 'Letta answered 429: provider rate limit' });
  });

  it('reads PENDING_APPROVAL from a 409 detail object', async () => {
    letta.script({ approval: { name: 'send_email', arguments: '{"to":"x"}' } });
    const run = await client.createRun([user('mail it')], call());
    while ((await client.getRun(run.id, call())).status !== 'completed');
    const error = await failure(client.createRun([user('next')], call()));
    expect(error).toMatchObject({ status: 409, code: 'PENDING_APPROVAL', retryable: true, endpointFault: false });
    const pending = letta.pendingApproval(AGENT)!;
    await client.createRun([{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: pending.toolCalls[0]!.tool_call_id, approve: false, reason: 'no' }], otid: 'a' }], call());
    expect(letta.pendingApproval(AGENT)).toBeUndefined();
  });

  it('treats a dropped connection and a timeout as transport faults, and an abort as ours', async () => {
    letta.script({ drop: true });
    expect(await failure(client.createRun([user('x')], call()))).toMatchObject({ kind: 'connection', retryable: true, message: expect.stringContaining('cannot reach Letta') });
    letta.script({ answerDelayMs: 1500 });
    expect(await failure(client.createRun([user('x')], call(200)))).toMatchObject({ kind: 'timeout', retryable: true });
    letta.script({ answerDelayMs: 2000 });
    const controller = new AbortController();
    const pending = client.createRun([user('x')], { signal: controller.signal, timeoutMs: 5000 });
    setTimeout(() => controller.abort(), 50);
    expect(await failure(pending)).toMatchObject({ aborted: true, endpointFault: false });
  });

  it('refuses a wrong key (401, error shape) and an unknown agent (404); a non-uuid4 id gets 422', async () => {
    const wrongKey = new LettaClient({ endpoint: letta.url, apiKey: 'sk-let-0000wrong0000', agentId: AGENT });
    expect(await failure(wrongKey.getAgent(call()))).toMatchObject({ status: 401, retryable: false, endpointFault: true, message: 'Letta answered 401: Invalid API key: The API key is not valid for this organization' });
    const unknown = new LettaClient({ endpoint: letta.url, apiKey: KEY, agentId: 'agent-99999999-2222-4333-8444-555555555555' });
    expect(await failure(unknown.getAgent(call()))).toMatchObject({ status: 404, retryable: false });
    const v1 = new LettaClient({ endpoint: letta.url, apiKey: KEY, agentId: 'agent-11111111-2222-1333-8444-555555555555' });
    expect(await failure(v1.getAgent(call()))).toMatchObject({ status: 422 });
    for (const c of [wrongKey, unknown, v1]) c.close();
  });

  it('keeps a path the endpoint is mounted under (a proxy in front of Letta), with or without /v1', async () => {
    for (const endpoint of [`${letta.url}/letta`, `${letta.url}/letta/v1/`]) {
      const mounted = new LettaClient({ endpoint, apiKey: KEY, agentId: AGENT });
      // The stand-in serves Letta at its root, so the mounted path is a 404: what matters is where the request went.
      expect(await failure(mounted.activeRuns(call()))).toMatchObject({ status: 404 });
      expect(letta.requests.at(-1)).toMatchObject({ method: 'GET', path: '/letta/v1/runs/active' });
      expect(letta.requests.at(-1)!.query.get('agent_id')).toBe(AGENT);
      mounted.close();
    }
  });
});

describe('LettaClient.streamRun (background stream)', () => {
  const streamCall = (timeoutMs = 5000, idleMs = 5000) => ({ signal: new AbortController().signal, timeoutMs, idleMs });

  it('names the run at once, then ends with its messages, stop reason and usage', async () => {
    letta.script({ reply: 'streamed hello', delayMs: 150 });
    const stream = await client.streamRun([user('hi')], streamCall());
    expect(stream.runId).toMatch(/^run-/);
    // Named while the run still thinks: the id can be recorded before anything waits on it.
    expect(letta.runs.get(stream.runId)?.status).toMatch(/created|running/);
    const request = letta.messageRequests().at(-1)!;
    expect(request.path).toBe(`/v1/agents/${AGENT}/messages/stream`);
    expect(request.otid).toBe('0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3');
    expect(request.body).toMatchObject({ streaming: true, stream_tokens: false, background: true, include_pings: true });
    const ended = await stream.ended;
    expect(ended.run).toEqual({ id: stream.runId, status: 'completed', stopReason: 'end_turn' });
    expect(ended.messages.filter((m) => m.message_type === 'assistant_message').map((m) => m.content)).toEqual(['streamed hello']);
    expect(ended.messages.some((m) => m.message_type === 'user_message' || m.message_type === 'ping')).toBe(false);
    expect(ended.usage).toEqual({ promptTokens: 10, completionTokens: 5, totalTokens: 15 });
  });

  it('reports a failed run as Letta ends it (its stop reason), and a stop for approval', async () => {
    letta.script({ stopReason: 'llm_api_error' });
    const failed = await (await client.streamRun([user('x')], streamCall())).ended;
    expect(failed.run).toMatchObject({ status: 'failed', stopReason: 'llm_api_error' });
    expect(failed.messages.filter((m) => m.message_type === 'assistant_message')).toEqual([]);
    letta.script({ approval: { name: 'send_email', arguments: '{"to":"a@b.c"}' } });
    const held = await (await client.streamRun([user('mail it')], streamCall())).ended;
    expect(held.run).toMatchObject({ status: 'completed', stopReason: 'requires_approval' });
    expect(held.messages.find((m) => m.message_type === 'approval_request_message')?.tool_call).toMatchObject({ name: 'send_email' });
    // Leave the agent free for the next tests.
    const pending = letta.pendingApproval(AGENT)!;
    await (await client.streamRun([{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: pending.toolCalls[0]!.tool_call_id, approve: false, reason: 'test over' }], otid: '1c2d3e4f-5061-4b7c-8d9e-0f1a2b3c4d5e' }], streamCall())).ended;
  });

  it('gets refusals before any stream, as any call does (429, 5xx)', async () => {
    letta.script({ status: 429, headers: { 'retry-after': '3' } });
    expect(await failure(client.streamRun([user('x')], streamCall()))).toMatchObject({ status: 429, kind: 'rate_limited', retryAfterMs: 3000 });
    letta.script({ status: 502, shape: 'error' });
    expect(await failure(client.streamRun([user('x')], streamCall()))).toMatchObject({ status: 502, kind: 'http_5xx' });
  });

  it('a message while an approval pends gets no 409 on the stream route: its run fails with an error event saying so', async () => {
    letta.script({ approval: { name: 'delete_all' } });
    await (await client.streamRun([user('x')], streamCall())).ended;
    const refused = await (await client.streamRun([user('again')], streamCall())).ended;
    expect(refused.run).toMatchObject({ status: 'failed', stopReason: 'error' });
    expect(refused.error).toMatch(/waiting for approval on a tool call/);
    const pending = letta.pendingApproval(AGENT)!;
    await (await client.streamRun([{ type: 'approval', approvals: [{ type: 'approval', tool_call_id: pending.toolCalls[0]!.tool_call_id, approve: false }], otid: '2d3e4f50-6172-4c8d-9e0f-1a2b3c4d5e6f' }], streamCall())).ended;
    expect(letta.pendingApproval(AGENT)).toBeUndefined();
  });

  it('a stream that breaks after naming its run rejects `ended` as a dropped connection; the run goes on', async () => {
    letta.script({ dropMidStream: true, delayMs: 100 });
    const stream = await client.streamRun([user('x')], streamCall());
    expect(await failure(stream.ended)).toMatchObject({ kind: 'connection' });
    const run = letta.runs.get(stream.runId)!;
    let state = await client.getRun(run.id, call());
    while (state.status === 'created' || state.status === 'running') state = await client.getRun(run.id, call());
    expect(state.status).toBe('completed');
  });

  it('a 2xx that is not a stream (a proxy, a server that ignored `streaming`) fails as a 5xx: a run may exist, so it is looked for', async () => {
    const { createServer } = await import('node:http');
    const proxy = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ messages: [], stop_reason: { stop_reason: 'end_turn' } }));
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as { port: number }).port;
    const behind = new LettaClient({ endpoint: `http://127.0.0.1:${port}`, apiKey: KEY, agentId: AGENT });
    try {
      expect(await failure(behind.streamRun([user('x')], streamCall()))).toMatchObject({ kind: 'http_5xx', status: 200, message: expect.stringContaining('instead of events') });
    } finally {
      behind.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('a connection dropped before the run is named fails the call itself (the run may exist)', async () => {
    letta.script({ dropAfterStart: true });
    expect(await failure(client.streamRun([user('x')], streamCall()))).toMatchObject({ kind: 'connection' });
  });

  it('a silent stream rejects after idleMs; a slow first byte after timeoutMs; an abort is ours', async () => {
    letta.script({ delayMs: 1500 });
    const quiet = await client.streamRun([user('x')], streamCall(5000, 200));
    expect(await failure(quiet.ended)).toMatchObject({ kind: 'timeout' });
    letta.script({ answerDelayMs: 1500 });
    expect(await failure(client.streamRun([user('x')], streamCall(200)))).toMatchObject({ kind: 'timeout' });
    letta.script({ delayMs: 1500 });
    const controller = new AbortController();
    const followed = await client.streamRun([user('x')], { signal: controller.signal, timeoutMs: 5000, idleMs: 5000 });
    controller.abort();
    expect(await failure(followed.ended)).toMatchObject({ aborted: true });
    // Let the runs above end before the next test.
    await new Promise((r) => setTimeout(r, 1600));
  });
});
