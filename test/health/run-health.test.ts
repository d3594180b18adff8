import { createHash } from 'node:crypto';
import { chmod, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { commitToBare, git } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { runHealth } from '../../src/health/run-health.js';
import type { AgentHealth, CheckName } from '../../src/health/types.js';
import type { ProcessInfo, ProcessManager } from '../../src/process/types.js';
import { homeLayout, type AgentPaths } from '../../src/home/layout.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

let home: string;
let healthy: AgentPaths;

beforeAll(async () => {
  home = join(await tempDir('health'), 'home');
  healthy = (await deployTestAgent(home)).paths;
});

function check(agent: AgentHealth, name: CheckName) {
  const found = agent.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no ${name} check in ${JSON.stringify(agent.checks)}`);
  return found;
}

async function sha(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** A process manager that answers from a table: health's side of the contract, not PM2's. */
function tableManager(states: Record<string, ProcessInfo['state']>, calls: string[][]): ProcessManager {
  return {
    name: 'pm2',
    start: async () => [],
    stop: async () => [],
    restart: async () => [],
    unregister: async () => {},
    status: async (agents) => {
      calls.push((agents ?? []).map((a) => a.agent.id));
      return (agents ?? []).map((a) => ({ id: a.agent.id, manager: 'pm2' as const, state: states[a.agent.id] ?? 'not-registered', pid: 42 }));
    },
    close: async () => {},
  };
}

describe('runHealth', () => {
  it('reports every check of a freshly deployed agent, process unknown without a manager', async () => {
    const report = await runHealth({ home, ids: [healthy.agent.id] });
    expect(report.healthy).toBe(true);
    const agent = report.agents[0]!;
    expect(agent.checks.map((c) => c.name)).toEqual(['folder', 'env', 'settings', 'database', 'schema', 'clone', 'logs', 'process', 'queue', 'reply']);
    for (const name of ['folder', 'env', 'settings', 'database', 'schema', 'clone', 'logs', 'queue'] as const) expect(check(agent, name).status, name).toBe('ok');
    expect(check(agent, 'process').status).toBe('unknown');
    expect(check(agent, 'clone').message).toContain('up to date');
    expect(agent.facts).toMatchObject({ mode: 'echo', schemaVersion: SCHEMA_VERSION, dirty: false, behind: 0, queue: { pending: 0, failed: 0, oldestPendingAgeS: null } });
    expect(agent.facts.commit).toMatch(/^[0-9a-f]{40}$/);
  });

  it('asks each process manager once for all its agents and maps the states', async () => {
    const other = (await deployTestAgent(home)).paths;
    const calls: string[][] = [];
    const manager = tableManager({ [healthy.agent.id]: 'online', [other.agent.id]: 'errored' }, calls);
    const report = await runHealth({ home, ids: [healthy.agent.id, other.agent.id], openManager: async () => manager });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.sort()).toEqual([healthy.agent.id, other.agent.id].sort());
    const [a, b] = report.agents;
    expect(check(a!, 'process')).toMatchObject({ status: 'ok' });
    expect(a!.facts).toMatchObject({ processState: 'online', pid: 42 });
    expect(check(b!, 'process')).toMatchObject({ status: 'fail' });
    expect(b!.healthy).toBe(false);
    expect(report.healthy).toBe(false);
    await rm(other.dir, { recursive: true });
  });

  it("takes each agent's state from its own manager, and reports only the managers its agents use", async () => {
    const pm2Agent = (await deployTestAgent(home)).paths;
    const systemdAgent = (await deployTestAgent(home, { processManager: 'systemd' })).paths;
    const calls: Record<string, string[][]> = { pm2: [], systemd: [] };
    // PM2 (asked early, about every agent) would call both online; systemd says its agent failed.
    const managers = {
      pm2: tableManager({ [pm2Agent.agent.id]: 'online', [systemdAgent.agent.id]: 'online' }, calls.pm2!),
      systemd: { ...tableManager({ [systemdAgent.agent.id]: 'errored' }, calls.systemd!), name: 'systemd' as const },
    };
    const report = await runHealth({ home, ids: [pm2Agent.agent.id, systemdAgent.agent.id], openManager: async (name) => managers[name as 'pm2' | 'systemd'] });
    expect(calls.pm2).toHaveLength(1);
    expect(calls.systemd).toEqual([[systemdAgent.agent.id]]);
    expect(report.processManagers.map((m) => m.name)).toEqual(['pm2', 'systemd']);
    expect(check(report.agents[0]!, 'process').status).toBe('ok');
    expect(check(report.agents[1]!, 'process').status).toBe('fail');

    const onlySystemd = await runHealth({ home, ids: [systemdAgent.agent.id], openManager: async (name) => managers[name as 'pm2' | 'systemd'] });
    expect(onlySystemd.processManagers).toEqual([{ name: 'systemd', available: true }]);
    expect(check(onlySystemd.agents[0]!, 'process').status).toBe('fail');
    await rm(pm2Agent.dir, { recursive: true });
    await rm(systemdAgent.dir, { recursive: true });
  });

  it('reports a process manager that fails to open as unknown, not as a failure of health', async () => {
    const report = await runHealth({ home, ids: [healthy.agent.id], openManager: async () => { throw new Error('connect ECONNREFUSED pm2'); } });
    expect(report.healthy).toBe(true);
    expect(report.processManagers).toEqual([{ name: 'pm2', available: false, message: 'connect ECONNREFUSED pm2' }]);
    expect(check(report.agents[0]!, 'process').status).toBe('unknown');
  });

  it('fails loose permissions, a broken .env and settings, and a corrupt database, naming each', async () => {
    const bad = (await deployTestAgent(home, { mode: 'live', endpoint: 'https://your_letta_here', apiKey: '' })).paths;
    await chmod(bad.dir, 0o755);
    await chmod(bad.env, 0o644);
    await writeFile(bad.settings, '{"agent": {"id": "agent-00000000-0000-4000-8000-000000000000"}, "message_mode": "loud"}');
    await writeFile(bad.db, Buffer.alloc(8192, 7));
    const before = await sha(bad.db);
    const report = await runHealth({ home, ids: [bad.agent.id] });
    const agent = report.agents[0]!;
    expect(agent.healthy).toBe(false);
    expect(check(agent, 'folder')).toMatchObject({ status: 'fail', message: expect.stringContaining('0755') });
    expect(check(agent, 'env')).toMatchObject({ status: 'fail', message: expect.stringContaining('0644') });
    expect(check(agent, 'settings')).toMatchObject({ status: 'fail', message: expect.stringContaining('message_mode') });
    expect(check(agent, 'database').status).toBe('fail');
    expect(check(agent, 'queue').status).toBe('unknown');
    expect(await sha(bad.db)).toBe(before);

    await chmod(bad.dir, 0o700);
    await chmod(bad.env, 0o600);
    const again = (await runHealth({ home, ids: [bad.agent.id] })).agents[0]!;
    // Live mode needs the endpoint and key: named, values never shown.
    expect(check(again, 'env').status).toBe('fail');
    expect(check(again, 'env').message).toMatch(/AGENT_ENDPOINT still holds a placeholder value \(needed in live mode\); AGENT_API_KEY is missing \(needed in live mode\)/);
    expect(JSON.stringify(again)).not.toContain('your_letta_here');
    await rm(bad.dir, { recursive: true });
  });

  it('reads a Broca-made database read-only: backlog, failures, stale queue and last reply', async () => {
    const broca = (await deployTestAgent(home)).paths;
    await rm(broca.db);
    makeBrocaDatabase(broca.db);
    await chmod(broca.db, 0o600);
    const db = new Database(broca.db);
    db.prepare("UPDATE queue SET timestamp = '2026-01-01 00:00:00' WHERE status = 'pending'").run();
    db.prepare("UPDATE messages SET timestamp = '2026-01-01 00:05:00' WHERE agent_response IS NOT NULL").run();
    db.close();
    const before = await sha(broca.db);
    const now = Date.parse('2026-01-01T00:08:00Z');
    const fresh = (await runHealth({ home, ids: [broca.agent.id], now: () => now })).agents[0]!;
    expect(fresh.facts.queue).toEqual({ pending: 4, processing: 2, failed: 2, oldestPendingAgeS: 480 });
    expect(fresh.facts.lastReplyAt).toBe('2026-01-01T00:05:00.000Z');
    expect(check(fresh, 'schema')).toMatchObject({ status: 'warn', message: expect.stringContaining('version 0') });
    expect(check(fresh, 'queue').status).toBe('warn');
    expect(check(fresh, 'reply').message).toBe('last reply 3m ago');
    expect(fresh.healthy).toBe(true);

    const stale = (await runHealth({ home, ids: [broca.agent.id], now: () => now + 3600_000 })).agents[0]!;
    expect(check(stale, 'queue')).toMatchObject({ status: 'fail', message: expect.stringContaining('not draining') });
    expect(stale.healthy).toBe(false);
    expect(await sha(broca.db)).toBe(before);
    await rm(broca.dir, { recursive: true });
  });

  it('warns about, but does not fail, a database a later animus migrated further', async () => {
    const agent = (await deployTestAgent(home)).paths;
    const db = new Database(agent.db);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const health = (await runHealth({ home, ids: [agent.agent.id] })).agents[0]!;
    expect(check(health, 'schema')).toMatchObject({ status: 'warn', message: expect.stringContaining('newer than this animus') });
    expect(health.healthy).toBe(true);
    await rm(agent.dir, { recursive: true });
  });

  it('tells a dirty clone from a touched one, and a clone behind its origin, without spawning git for a clean one', async () => {
    const agent = (await deployTestAgent(home)).paths;
    const file = join(agent.clone, 'package.json');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text);
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    let health = (await runHealth({ home, ids: [agent.agent.id] })).agents[0]!;
    expect(health.facts.dirty).toBe(false);

    await writeFile(file, text.replace('animus-runtime', 'animus-runtimX'));
    health = (await runHealth({ home, ids: [agent.agent.id] })).agents[0]!;
    expect(health.facts.dirty).toBe(true);
    expect(check(health, 'clone')).toMatchObject({ status: 'warn', message: expect.stringContaining('package.json') });
    await writeFile(file, text);

    await commitToBare(homeLayout(home).runtimeRepo, { 'NEWS.md': 'next\n' }, 'next build');
    health = (await runHealth({ home, ids: [agent.agent.id] })).agents[0]!;
    expect(health.facts.behind).toBe(-1);
    expect(check(health, 'clone').message).toContain('origin has a newer commit');
    await git(['fetch', '--quiet', 'origin'], agent.clone);
    health = (await runHealth({ home, ids: [agent.agent.id] })).agents[0]!;
    expect(health.facts.behind).toBe(1);
    expect(check(health, 'clone').message).toContain('1 commit(s) behind');
    expect(health.healthy).toBe(true);
    await rm(agent.dir, { recursive: true });
  });

  it('clones of a local origin that is gone: every one of them is judged by its remote-tracking ref, not only the first', async () => {
    const gone = join(await tempDir('health-gone-origin'), 'home');
    const agents = [(await deployTestAgent(gone)).paths, (await deployTestAgent(gone)).paths, (await deployTestAgent(gone)).paths];
    // The guide's layout has no .animus/: the origin the clones name is not there.
    await rm(homeLayout(gone).stateDir, { recursive: true, force: true });
    const report = await runHealth({ home: gone });
    expect(report.agents.map((a) => a.id).sort()).toEqual(agents.map((a) => a.agent.id).sort());
    for (const agent of report.agents) {
      expect(agent.facts.behind, agent.id).toBe(0);
      expect(check(agent, 'clone').message, agent.id).toContain('up to date');
    }
    // The tracking ref is remembered with the other .git files: a fetch that moves it is seen at once.
    const moved = agents[0]!;
    expect((await runHealth({ home: gone, ids: [moved.agent.id], settleMs: 0 })).agents[0]!.facts.behind).toBe(0);
    expect((await runHealth({ home: gone, ids: [moved.agent.id], settleMs: 0 })).agents[0]!.facts.behind).toBe(0);
    const next = (await git(['commit-tree', 'HEAD^{tree}', '-p', 'HEAD', '-m', 'fetched'], moved.clone)).trim();
    await git(['update-ref', 'refs/remotes/origin/main', next], moved.clone);
    const after = (await runHealth({ home: gone, ids: [moved.agent.id], settleMs: 0 })).agents[0]!;
    expect(after.facts.behind).toBe(1);
    expect(check(after, 'clone').message).toContain('1 commit(s) behind');
  });

  it('lists misnamed folders as unhealthy and refuses an unknown id or a missing home', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(home, 'agent-notauuid'));
    const report = await runHealth({ home });
    const misnamed = report.agents.find((a) => a.id === 'agent-notauuid')!;
    expect(misnamed.healthy).toBe(false);
    expect(misnamed.checks[0]!.message).toContain('not agent-<uuid>');
    await rm(join(home, 'agent-notauuid'), { recursive: true });

    await expect(runHealth({ home, ids: ['agent-00000000-0000-4000-8000-000000000000'] })).rejects.toMatchObject({ code: 'ENOAGENT' });
    await expect(runHealth({ home: join(home, 'nope') })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
