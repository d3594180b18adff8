import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { startLettaServer, type LettaServer, type StopReason } from '../helpers/letta-server.js';
import { tempDir } from '../helpers/temp.js';
import { LettaClient } from '../../src/letta/client.js';
import { DENY_REASON } from '../../src/runtime/approvals.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { pokeRuntime } from '../../src/runtime/wake-socket.js';
import type { AgentPaths } from '../../src/home/layout.js';
import { FAST_ENV, setEnv, startRuntime, updateSettings, type RuntimeProcess } from './harness.js';

/**
 * What a user sees for each way Letta ends a run or refuses a request: the reply (or
 * none), the item's status and last_error, the log's warning, runtime-state for health.
 */
const API_KEY = 'sk-let-4f9a1c2e8b7d';
let home: string;
let letta: LettaServer;

beforeAll(async () => {
  home = await tempDir('animus-outcomes');
  letta = await startLettaServer({ apiKey: API_KEY });
});
afterAll(() => letta.close());

async function liveAgent(edit: (s: Parameters<Parameters<typeof updateSettings>[1]>[0]) => void = () => {}) {
  const agent = await deployTestAgent(home, { mode: 'live', endpoint: letta.url, apiKey: API_KEY });
  await updateSettings(agent.paths, (s) => {
    s.queue_refresh = 0.05;
    edit(s);
  });
  return agent;
}

function rows(paths: AgentPaths, sql: string, ...params: unknown[]): Array<Record<string, unknown>> {
  const db = new Database(paths.db, { readonly: true });
  try {
    return db.prepare(sql).all(...params) as Array<Record<string, unknown>>;
  } finally {
    db.close();
  }
}
const item = (paths: AgentPaths, id: number) =>
  rows(paths, 'SELECT q.status, q.attempts, q.last_error, m.agent_response, m.delivery_status, m.stop_reason FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.id = ?', id)[0]!;
const requests = (paths: AgentPaths, id: number) => rows(paths, 'SELECT kind, outcome, stop_reason, error_kind, http_status, approval FROM agent_requests WHERE queue_id = ? ORDER BY id', id);

async function send(paths: AgentPaths, text: string, user = 'tester'): Promise<number> {
  const db = openDatabase(paths.db);
  try {
    const result = storeInbound(db, { platform: 'local', platformUserId: user, username: user, text });
    if (result.status !== 'queued') throw new Error(`not queued: ${result.status}`);
    return result.queueId;
  } finally {
    db.close();
    await pokeRuntime(paths.dir);
  }
}

const finished = (runtime: RuntimeProcess, id: number) =>
  runtime.waitForLog((l) => l.item === id && (l.msg === 'item completed' || l.msg.startsWith('agent request failed; n')), 30_000);

function lettaSection(paths: AgentPaths): Record<string, unknown> | undefined {
  try {
    return (JSON.parse(readFileSync(join(paths.dir, 'runtime-state.json'), 'utf8')) as { sections: Record<string, Record<string, unknown>> }).sections.letta;
  } catch {
    return undefined;
  }
}

describe('stop reasons are outcomes', () => {
  it('retries transient ones, fails the rest with the reason, delivers any text, and never completes silently', async () => {
    const { paths } = await liveAgent();
    letta.reply = () => 'the real answer';
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');

    const transient: StopReason[] = ['error', 'llm_api_error', 'invalid_llm_response', 'invalid_tool_call', 'no_tool_call'];
    for (const reason of transient) {
      letta.script({ stopReason: reason }, { reply: `answered after ${reason}` });
      const id = await send(paths, `transient ${reason}`);
      await finished(runtime, id);
      expect(item(paths, id), reason).toMatchObject({ status: 'completed', attempts: 2, agent_response: `answered after ${reason}`, stop_reason: 'end_turn' });
      expect(requests(paths, id).map((r) => [r.outcome, r.stop_reason, r.error_kind])).toEqual([
        ['retry', reason, 'stop_reason'],
        ['replied', 'end_turn', null],
      ]);
    }

    const fatal: Array<[StopReason, RegExp]> = [
      ['max_steps', /step limit/],
      ['max_tokens_exceeded', /max_tokens/],
      ['insufficient_credits', /out of credits/],
      ['context_window_overflow_in_system_prompt', /context window/],
      ['cancelled', /cancelled on the Letta side/],
      ['requires_approval', /without naming the tool call/],
    ];
    for (const [reason, fix] of fatal) {
      letta.script({ stopReason: reason });
      const id = await send(paths, `fatal ${reason}`);
      const line = await finished(runtime, id);
      expect(line).toMatchObject({ level: reason === 'requires_approval' ? 'error' : 'warn', msg: 'agent request failed; not retryable', stop_reason: reason });
      const row = item(paths, id);
      expect(row, reason).toMatchObject({ status: 'failed', attempts: 1, agent_response: null });
      if (reason !== 'requires_approval') expect(String(row.last_error)).toMatch(new RegExp(`stop reason ${reason} and no reply`));
      expect(String(row.last_error)).toMatch(fix);
      if (reason === 'insufficient_credits') expect(lettaSection(paths)).toMatchObject({ status: 'error', creditsExhausted: true, message: expect.stringContaining('out of credits') });
    }

    // Text with an abnormal end is delivered (asking again would repeat the message), with a warning.
    letta.script({ stopReason: 'max_steps', reply: 'partial answer' });
    const partial = await send(paths, 'long task');
    await finished(runtime, partial);
    expect(item(paths, partial)).toMatchObject({ status: 'completed', agent_response: 'partial answer', stop_reason: 'max_steps' });
    expect(runtime.logs.some((l) => l.item === partial && l.level === 'warn' && l.msg === 'agent replied, but its run ended with stop reason max_steps')).toBe(true);
    // A success clears what health showed.
    expect(lettaSection(paths)).toMatchObject({ status: 'ok', creditsExhausted: false });

    // A normal end without text: completed, nothing to deliver, and said so.
    letta.script({ reply: '' }, { stopReason: 'tool_rule', reply: 'ended by rule' });
    const silent = await send(paths, 'say nothing');
    await finished(runtime, silent);
    expect(item(paths, silent)).toMatchObject({ status: 'completed', agent_response: '', delivery_status: 'skipped' });
    expect(runtime.logs.some((l) => l.item === silent && l.level === 'warn' && l.msg === 'agent ended its turn without a reply: nothing is sent to the user')).toBe(true);
    const byRule = await send(paths, 'rule');
    await finished(runtime, byRule);
    expect(item(paths, byRule)).toMatchObject({ status: 'completed', agent_response: 'ended by rule', stop_reason: 'tool_rule' });
    expect(letta.maxConcurrentRuns).toBe(1);
  });
});

describe('tool approvals', () => {
  it('deny (default): answers approve=false with a reason in the current form, then delivers what the agent says', async () => {
    const { paths, id } = await liveAgent();
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    letta.script({ approval: { name: 'send_email', arguments: '{"to":"boss"}' } });
    const q = await send(paths, 'mail my boss');
    await finished(runtime, q);
    expect(item(paths, q)).toMatchObject({ status: 'completed', agent_response: 'understood: send_email was not allowed' });
    expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([{ agent: id, form: 'current', toolCallIds: [expect.stringMatching(/^call_/)], approve: false, reason: DENY_REASON }]);
    expect(requests(paths, q).map((r) => [r.kind, r.outcome, r.stop_reason])).toEqual([
      ['message', 'approval', 'requires_approval'],
      ['approval', 'replied', 'end_turn'],
    ]);
    expect(letta.pendingApproval(id)).toBeUndefined();
  });

  it('approve: answers approve=true, in the older form where the server only takes that', async () => {
    const { paths, id } = await liveAgent((s) => {
      s.letta.approvals = 'approve';
    });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    letta.approvalForms = 'legacy';
    try {
      letta.script({ approval: { name: 'run_code' } });
      const q = await send(paths, 'compute it');
      await finished(runtime, q);
      expect(item(paths, q)).toMatchObject({ status: 'completed', agent_response: 'done: run_code ran' });
      expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([expect.objectContaining({ form: 'legacy', approve: true })]);
    } finally {
      letta.approvalForms = 'both';
    }
  });

  it('hold: the agent is marked awaiting approval, sends nothing new, and `animus approvals` answers it', async () => {
    const { paths, id } = await liveAgent((s) => {
      s.letta.approvals = 'hold';
    });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    letta.script({ approval: { name: 'delete_file', arguments: '{"path":"notes.txt"}' } });
    const first = await send(paths, 'clean up');
    await runtime.waitForLog((l) => l.msg.startsWith('agent awaiting approval') && l.item === first);
    expect(lettaSection(paths)).toMatchObject({ status: 'warn', awaitingApproval: { item: first, tools: 'delete_file({"path":"notes.txt"})' }, message: expect.stringContaining('awaiting approval of delete_file') });
    const sentBefore = letta.messageRequests().length;
    const second = await send(paths, 'and then this');

    const listed = json<{ approvals: Array<{ item: number; tools: Array<{ name: string; arguments: string }>; decision: unknown }> }>(await runCli(['approvals', 'list', '--agent', id, '--json'], { home }));
    expect(listed.approvals).toEqual([expect.objectContaining({ item: first, tools: [expect.objectContaining({ name: 'delete_file', arguments: '{"path":"notes.txt"}' })], decision: null })]);
    expect(item(paths, second)).toMatchObject({ status: 'pending' });
    expect(letta.messageRequests().length).toBe(sentBefore);

    const approved = await runCli(['approvals', 'approve', '--agent', id, '--reason', 'fine, once', '--json'], { home });
    expect(approved.code).toBe(0);
    expect(json(approved)).toMatchObject({ agent: id, item: first, approve: true, reason: 'fine, once', runtimeWoken: true });
    await finished(runtime, first);
    await finished(runtime, second);
    expect(item(paths, first)).toMatchObject({ status: 'completed', agent_response: 'done: delete_file ran' });
    expect(item(paths, second)).toMatchObject({ status: 'completed' });
    expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([expect.objectContaining({ approve: true, reason: 'fine, once' })]);
    expect(lettaSection(paths)).toMatchObject({ status: 'ok', awaitingApproval: null });

    const none = await runCli(['approvals', 'deny', '--agent', id], { home });
    expect(none.code).toBe(3);
    expect(none.stderr.trim()).toBe(`animus: no tool approval is waiting on ${id}: \`animus approvals list --agent ${id}\` shows what waits`);
  });

  it('a pending approval found at the first send (409 PENDING_APPROVAL) is answered by the policy, then the message goes out', async () => {
    const { paths, id } = await liveAgent();
    // Someone else's run left the agent waiting for an approval.
    const other = new LettaClient({ endpoint: letta.url, apiKey: API_KEY, agentId: id });
    letta.script({ approval: { name: 'transfer_money' } });
    const run = await other.createRun([{ role: 'user', content: 'pay the bill', otid: 'f0e1d2c3-b4a5-4968-8776-655443322110' }], { timeoutMs: 5000 });
    while ((await other.getRun(run.id, { timeoutMs: 5000 })).status !== 'completed');
    other.close();
    expect(letta.pendingApproval(id)).toBeDefined();

    letta.reply = () => 'your answer';
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const q = await send(paths, 'hello?');
    await finished(runtime, q);
    expect(item(paths, q)).toMatchObject({ status: 'completed', agent_response: 'your answer', attempts: 1 });
    expect(runtime.logs.some((l) => l.msg.startsWith('the agent has a tool approval pending from before') && l.tools === 'transfer_money({})')).toBe(true);
    expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([expect.objectContaining({ approve: false, reason: DENY_REASON })]);
    expect(requests(paths, q).map((r) => [r.kind, r.outcome, r.http_status])).toEqual([
      ['message', 'abandoned', 409],
      ['approval', 'replied', null],
      ['message', 'replied', null],
    ]);
  });
});

describe('an approval left pending before the runtime started', () => {
  async function leavePendingApproval(id: string, tool: string): Promise<void> {
    // Someone else's run (another Letta client, or this agent's previous runtime) stopped for an approval nobody answered.
    const other = new LettaClient({ endpoint: letta.url, apiKey: API_KEY, agentId: id });
    letta.script({ approval: { name: tool, arguments: '{"amount":40}' } });
    const run = await other.createRun([{ role: 'user', content: 'pay the bill', otid: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d' }], { timeoutMs: 5000 });
    while ((await other.getRun(run.id, { timeoutMs: 5000 })).status !== 'completed');
    other.close();
    expect(letta.pendingApproval(id)).toBeDefined();
  }
  const lettaHealth = async (id: string) => {
    const report = json<{ agents: Array<{ checks: Array<{ name: string; status: string; message: string }> }> }>(await runCli(['health', id, '--json', '--no-process'], { home }));
    return report.agents[0]!.checks.find((c) => c.name === 'letta');
  };

  it('is shown by status and health as soon as the runtime starts, before any message, and cleared once the policy answered it', async () => {
    const { paths, id } = await liveAgent();
    await leavePendingApproval(id, 'transfer_money');
    const runtime = startRuntime(paths, FAST_ENV);
    const found = await runtime.waitForLog((l) => l.msg.startsWith('the agent has a tool approval pending from before this runtime started'));
    expect(found).toMatchObject({ level: 'warn', tools: 'transfer_money({"amount":40})', policy: 'deny', since: expect.any(String) });
    expect(lettaSection(paths)).toMatchObject({ status: 'warn', approvalLeftPending: { tools: 'transfer_money({"amount":40})', policy: 'deny' } });
    expect(await lettaHealth(id)).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/^a tool approval of transfer_money\(\{"amount":40\}\) was left pending on the agent since \S+, before this runtime started \(Letta refuses every new message until it is answered\): letta.approvals = deny answers it before the next message$/),
    });
    expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([]);

    letta.reply = () => 'paid? no, denied';
    const q = await send(paths, 'did it go through?');
    await finished(runtime, q);
    expect(item(paths, q)).toMatchObject({ status: 'completed', agent_response: 'paid? no, denied' });
    expect(letta.approvalAnswers.filter((a) => a.agent === id)).toEqual([expect.objectContaining({ approve: false, reason: DENY_REASON })]);
    expect(lettaSection(paths)).toMatchObject({ status: 'ok', approvalLeftPending: null });
    expect(await lettaHealth(id)).toMatchObject({ status: 'ok' });
    runtime.child.kill('SIGTERM');
    await runtime.exited;

    // The answered request is still in the agent's history: a restart finds nothing pending.
    const again = startRuntime(paths, FAST_ENV);
    await again.waitForLog((l) => l.msg === 'runtime ready');
    const q2 = await send(paths, 'and now?');
    await finished(again, q2);
    expect(again.logs.some((l) => l.msg.startsWith('the agent has a tool approval pending'))).toBe(false);
    expect(lettaSection(paths)).toMatchObject({ status: 'ok', approvalLeftPending: null });
  });

  it('with letta.approvals = hold, says an operator will be asked once a message arrives', async () => {
    const { paths, id } = await liveAgent((s) => {
      s.letta.approvals = 'hold';
    });
    await leavePendingApproval(id, 'delete_file');
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg.startsWith('the agent has a tool approval pending from before this runtime started'));
    expect(lettaSection(paths)).toMatchObject({
      status: 'warn',
      message: expect.stringContaining(`it is held for an operator when the next message arrives (\`animus approvals list --agent ${id}\`), or answer it in Letta`),
    });
    const q = await send(paths, 'anything');
    await runtime.waitForLog((l) => l.msg.startsWith('agent awaiting approval') && l.item === q);
    // Now it is this item's held approval, shown as such.
    expect(lettaSection(paths)).toMatchObject({ status: 'warn', approvalLeftPending: null, awaitingApproval: { item: q, tools: 'delete_file({"amount":40})' } });
  });
});

describe('errors', () => {
  it('parses both error shapes into one line, honours Retry-After, and backs a provider 429 off longer than a 5xx', async () => {
    const { paths } = await liveAgent();
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const retryOf = (id: number) => runtime.waitForLog((l) => l.item === id && l.msg === 'agent request failed; will retry');

    letta.script({ status: 503, body: { error: { type: 'internal_server_error', message: 'upstream unavailable', detail: 'try again' } } });
    const five = await send(paths, 'five hundred');
    expect(await retryOf(five)).toMatchObject({ status: 503, error: 'Letta answered 503: upstream unavailable: try again' });
    const fiveDelay = (runtime.logs.find((l) => l.item === five && l.msg === 'agent request failed; will retry')!.retry_in_ms as number);
    await finished(runtime, five);

    letta.script({ status: 409, body: { detail: 'database is locked' }, headers: { 'retry-after': '1' } });
    const locked = await send(paths, 'locked');
    expect(await retryOf(locked)).toMatchObject({ status: 409, error: 'Letta answered 409: database is locked', retry_in_ms: expect.any(Number) });
    expect(runtime.logs.find((l) => l.item === locked && l.msg === 'agent request failed; will retry')!.retry_in_ms).toBeGreaterThanOrEqual(1000);
    await finished(runtime, locked);

    letta.script({ status: 429, body: { error: { type: 'rate_limit_error', message: 'Rate limit exceeded for the model provider' } } });
    const limited = await send(paths, 'rate limited');
    const retry = await retryOf(limited);
    expect(retry).toMatchObject({ status: 429, error: 'Letta answered 429: Rate limit exceeded for the model provider' });
    // The default rate-limit schedule starts at 20 s (half to all of it with jitter); a 5xx's at the tuned 20 ms.
    expect(retry.retry_in_ms as number).toBeGreaterThanOrEqual(10_000);
    expect(fiveDelay).toBeLessThan(1000);
    expect(item(paths, limited)).toMatchObject({ status: 'pending', last_error: 'Letta answered 429: Rate limit exceeded for the model provider' });
    expect(requests(paths, limited)).toEqual([expect.objectContaining({ outcome: 'retry', error_kind: 'rate_limited', http_status: 429 })]);
  });

  it('a live agent whose id is not uuid4 is refused at start with one line', async () => {
    const { paths } = await deployTestAgent(home, { uuid: '9a2b3c4d-5e6f-1890-abcd-ef1234567890', mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.message_mode = 'live';
    });
    await setEnv(paths, { AGENT_ENDPOINT: letta.url, AGENT_API_KEY: API_KEY });
    const runtime = startRuntime(paths, FAST_ENV);
    expect((await runtime.exited).code).toBe(78);
    expect(runtime.stderr().trim().split('\n')).toEqual([expect.stringContaining('Letta agent ids are uuid4')]);
  });
});
