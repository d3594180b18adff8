import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, REPO_ROOT, runCli } from '../helpers/cli.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { tempDir } from '../helpers/temp.js';
import { SETTLE_MS } from '../../src/health/check-cache.js';
import type { HealthReport } from '../../src/health/types.js';

/** Enough agents that health and backup split the work across worker threads (the bundled CLI only). */
const COUNT = 320;
let home: string;
let ids: string[];
let settledAt: number;

beforeAll(async () => {
  home = join(await tempDir('large-home'), 'home');
  const first = await deployTestAgent(home);
  const env = await readFile(first.paths.env, 'utf8');
  const settings = await readFile(first.paths.settings, 'utf8');
  ids = [first.id];
  const copies = Array.from({ length: COUNT - 1 }, () => `agent-${randomUUID()}`);
  // cp -a keeps the clone's mtimes, so its git index still matches.
  for (let i = 0; i < copies.length; i += 64) {
    await Promise.all(
      copies.slice(i, i + 64).map(async (id) => {
        await execa('cp', ['-a', first.paths.dir, join(home, id)]);
        await writeFile(join(home, id, '.env'), env.split(first.id).join(id), { mode: 0o600 });
        await writeFile(join(home, id, 'settings.json'), settings.split(first.id).join(id), { mode: 0o600 });
      }),
    );
  }
  ids.push(...copies);
  ids.sort();
  settledAt = Date.now() + SETTLE_MS + 50;
}, 120_000);

afterAll(async () => {
  if (home) await killPm2Daemon(`${home}.pm2`);
}, 60_000);

describe('a home large enough for worker threads', () => {
  it('health reports every agent once, in folder order, and the cached run agrees with the fresh one', async () => {
    const fresh = await runCli(['health', '--json', '--no-process'], { home });
    expect(fresh.code, fresh.stderr).toBe(0);
    const report = json<HealthReport>(fresh);
    expect(report.agents.map((a) => a.id)).toEqual(ids);
    expect(report.agents.every((a) => a.checks.length === 10 && a.healthy)).toBe(true);
    // Files younger than the settle time are not remembered: wait it out, remember, then answer from memory.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, settledAt - Date.now())));
    await runCli(['health', '--json', '--no-process'], { home });
    // Read as text: the file's header names the built CLI's version, not this test's.
    const remembered = (await readFile(join(home, '.animus', 'health-cache'), 'utf8')).split('\n').slice(1).filter(Boolean).map((line) => line.split(' ')[0]);
    expect(remembered.sort()).toEqual(ids);
    const cached = json<HealthReport>(await runCli(['health', '--json', '--no-process'], { home }));
    // Everything but the reply's age, which moves with the clock.
    const comparable = (r: HealthReport) => r.agents.map((a) => ({ ...a, checks: a.checks.filter((c) => c.name !== 'reply') }));
    expect(comparable(cached)).toEqual(comparable(report));
  });

  it('health over a real PM2 daemon: the agent it runs is online, the others not registered, another app ignored', async () => {
    const pm2Home = `${home}.pm2`;
    const runs = ids[7]!;
    const pm2 = (args: string[]) => execa(process.execPath, [join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2'), ...args], { env: { PM2_HOME: pm2Home, PATH: process.env.PATH }, extendEnv: false, cwd: home });
    // Registered as animus names it (animus-<uuid>, working folder the agent's), a stand-in process; and an app of someone else's.
    await pm2(['start', 'sleep', '--name', `animus-${runs.slice('agent-'.length)}`, '--cwd', join(home, runs), '--no-autorestart', '--', 'infinity']);
    await pm2(['start', 'sleep', '--name', 'someone-elses', '--no-autorestart', '--', 'infinity']);
    const report = json<HealthReport>(await runCli(['health', '--json', '--offline'], { home, pm2Home }));
    expect(report.processManagers).toEqual([{ name: 'pm2', available: true }]);
    const states = new Map(report.agents.map((a) => [a.id, a.facts.processState]));
    expect(states.get(runs)).toBe('online');
    expect(report.agents.find((a) => a.id === runs)!.facts.pid).toBeGreaterThan(0);
    expect([...states].filter(([id]) => id !== runs).every(([, state]) => state === 'not-registered')).toBe(true);
    expect(report.summary.unhealthy).toBe(COUNT - 1);
  }, 120_000);

  it('backup --all archives every agent once', async () => {
    const result = await runCli(['backup', '--all', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ backups: Array<{ id: string }>; failed: unknown[] }>(result);
    expect(out.failed).toEqual([]);
    // Threads claim agents as they go; the outcomes still come back in folder order.
    expect(out.backups.map((b) => b.id)).toEqual(ids);
    const list = json<Array<{ agentId: string; problem?: string }>>(await runCli(['backup', 'list', '--json'], { home }));
    expect(list.filter((e) => !e.problem).map((e) => e.agentId).sort()).toEqual(ids);
  });
});
