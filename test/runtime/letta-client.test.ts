import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { AgentCallError, createLettaClient, lettaBaseUrl, type AgentClient } from '../../src/runtime/letta.js';

const KEY = 'sk-let-client-4f9a1c2e8b7d';
const AGENT = 'agent-11111111-2222-4333-8444-555555555555';
let letta: LettaServer;
let client: AgentClient;

beforeAll(async () => {
  letta = await startLettaServer({ apiKey: KEY, agents: [AGENT] });
  client = await createLettaClient({ endpoint: `${letta.url}/v1/`, apiKey: KEY, agentId: AGENT });
});
afterAll(() => letta.close());

const call = (timeoutMs = 5000) => client.send('[Username: @a, Telegram ID: 1] hi', { signal: new AbortController().signal, timeoutMs });

async function failure(promise: Promise<unknown>): Promise<AgentCallError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AgentCallError);
    return error as AgentCallError;
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

describe('Letta client', () => {
  it('sends one user message to /v1/agents/{id}/messages and takes every assistant_message as the reply, with usage', async () => {
    letta.script({ reply: 'first part' });
    const answer = await call();
    expect(answer).toMatchObject({ reply: 'first part', usage: { promptTokens: 10, completionTokens: 5, totalTokens: 15 } });
    expect(answer.latencyMs).toBeGreaterThanOrEqual(0);
    const request = letta.messageRequests().at(-1)!;
    expect(request.path).toBe(`/v1/agents/${AGENT}/messages`);
    expect(request.body).toEqual({ messages: [{ role: 'user', content: '[Username: @a, Telegram ID: 1] hi' }] });
  });

  it.each([
    [{ status: 500 }, true, 500],
    [{ status: 409, body: { detail: 'agent busy' } }, true, 409],
    [{ status: 422, body: { detail: [{ msg: 'bad' }] } }, false, 422],
    [{ status: 400 }, false, 400],
  ])('classifies %j (retryable %s)', async (step, retryable, status) => {
    const before = letta.messageRequests().length;
    letta.script(step);
    const error = await failure(call());
    expect(error).toMatchObject({ retryable, status });
    // maxRetries 0: exactly one request, the queue owns retries.
    expect(letta.messageRequests().length).toBe(before + 1);
  });

  it('honours Retry-After on 429', async () => {
    letta.script({ status: 429, headers: { 'retry-after': '7' } });
    expect(await failure(call())).toMatchObject({ retryable: true, status: 429, retryAfterMs: 7000 });
  });

  it('treats a dropped connection and a timeout as retryable', async () => {
    letta.script({ drop: true });
    expect(await failure(call())).toMatchObject({ retryable: true, message: expect.stringContaining('cannot reach') });
    letta.script({ delayMs: 1500 });
    expect(await failure(call(200))).toMatchObject({ retryable: true, message: 'agent request timed out' });
  });

  it('fails 401 (wrong key) and 404 (unknown agent) as not retryable', async () => {
    const wrongKey = await createLettaClient({ endpoint: letta.url, apiKey: 'sk-wrong', agentId: AGENT });
    expect(await failure(wrongKey.send('x', { signal: new AbortController().signal, timeoutMs: 5000 }))).toMatchObject({ retryable: false, status: 401 });
    const unknown = await createLettaClient({ endpoint: letta.url, apiKey: KEY, agentId: 'agent-99999999-2222-4333-8444-555555555555' });
    expect(await failure(unknown.send('x', { signal: new AbortController().signal, timeoutMs: 5000 }))).toMatchObject({ retryable: false, status: 404 });
  });

  it('marks an abort by our own shutdown as such', async () => {
    letta.script({ delayMs: 2000 });
    const controller = new AbortController();
    const pending = client.send('x', { signal: controller.signal, timeoutMs: 5000 });
    setTimeout(() => controller.abort(), 50);
    expect(await failure(pending)).toMatchObject({ aborted: true });
  });
});
