import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { startLettaServer, type LettaServer } from '../helpers/letta-server.js';
import { tempDir } from '../helpers/temp.js';
import type { HealthReport } from '../../src/health/types.js';
import { freePort } from '../helpers/ports.js';

const KEY = 'sk-let-4f9a1c2e8b7d';
const KNOWN = 'agent-3f1e2d4c-5b6a-4798-8a1b-2c3d4e5f6a7b';
let home: string;
let letta: LettaServer;

beforeAll(async () => {
  home = join(await tempDir('health-letta'), 'home');
  letta = await startLettaServer({ apiKey: KEY, agents: [KNOWN] });
});
afterAll(() => letta.close());

async function lettaCheck(id: string, ...flags: string[]) {
  const result = await runCli(['health', id, '--json', '--no-process', ...flags], { home });
  const report = json<HealthReport>(result);
  return { code: result.code, check: report.agents[0]!.checks.find((c) => c.name === 'letta') };
}

describe('the letta check of animus health', () => {
  it('says in one line whether Letta knows the agent, refuses the key, has no such agent, or cannot be reached', async () => {
    const ok = await deployTestAgent(home, { uuid: KNOWN.slice('agent-'.length), mode: 'live', endpoint: letta.url, apiKey: KEY });
    const wrongKey = await deployTestAgent(home, { mode: 'live', endpoint: letta.url, apiKey: 'sk-let-9e8d7c6b5a41' });
    const unknown = await deployTestAgent(home, { mode: 'live', endpoint: `${letta.url}/v1`, apiKey: KEY });
    const unreachable = await deployTestAgent(home, { mode: 'live', endpoint: `http://127.0.0.1:${await freePort()}`, apiKey: KEY });

    expect(await lettaCheck(ok.id)).toMatchObject({ check: { status: 'ok', message: 'Letta knows the agent (stand-in agent)' } });
    expect(letta.requests.at(-1)).toMatchObject({ method: 'GET', path: `/v1/agents/${KNOWN}`, authorization: `Bearer ${KEY}` });
    expect(await lettaCheck(wrongKey.id)).toEqual({ code: 1, check: { name: 'letta', status: 'fail', message: `Letta refuses the API key (401): set AGENT_API_KEY in ${wrongKey.paths.env}, then \`animus restart ${wrongKey.id}\`` } });
    expect(await lettaCheck(unknown.id)).toMatchObject({ code: 1, check: { status: 'fail', message: `Letta has no agent ${unknown.id} (404): check AGENT_ENDPOINT and that the agent exists in that Letta project` } });
    expect(await lettaCheck(unreachable.id)).toMatchObject({ code: 1, check: { status: 'fail', message: expect.stringMatching(/^Letta unreachable at 127\.0\.0\.1:\d+: ECONNREFUSED$/) } });

    // --offline asks nothing of Letta.
    const before = letta.requests.length;
    expect(await lettaCheck(wrongKey.id, '--offline')).toMatchObject({ code: 0, check: { status: 'ok' } });
    expect(letta.requests.length).toBe(before);
  });

  it('shows what the running runtime recorded: an approval awaiting an operator, an account out of credits', async () => {
    const agent = await deployTestAgent(home, { mode: 'live', endpoint: letta.url, apiKey: KEY });
    const state = (section: Record<string, unknown>) =>
      writeFile(join(agent.paths.dir, 'runtime-state.json'), JSON.stringify({ format: 1, pid: process.pid, updatedAt: new Date().toISOString(), sections: { letta: { at: new Date().toISOString(), ...section } } }), { mode: 0o600 });
    await state({ status: 'warn', message: 'awaiting approval of send_email({}) since 2026-12-01T07:00:00.000Z: `animus approvals list --agent x`' });
    expect(await lettaCheck(agent.id, '--offline')).toMatchObject({ code: 0, check: { status: 'warn', message: expect.stringContaining('awaiting approval of send_email') } });
    await state({ status: 'error', message: 'the Letta account is out of credits: add credits, then `animus queue retry --agent x`' });
    expect(await lettaCheck(agent.id, '--offline')).toMatchObject({ code: 1, check: { status: 'fail', message: expect.stringContaining('out of credits') } });
    // A state file left by a runtime that is gone says nothing.
    await writeFile(join(agent.paths.dir, 'runtime-state.json'), JSON.stringify({ format: 1, pid: 2 ** 22 + 7, updatedAt: '', sections: { letta: { status: 'error', message: 'stale', at: '' } } }));
    expect(await lettaCheck(agent.id, '--offline')).toMatchObject({ check: { status: 'ok' } });
  });
});
