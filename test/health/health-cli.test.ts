import { execa } from 'execa';
import { chmod, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv, json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import type { HealthReport } from '../../src/health/types.js';
import type { AgentPaths } from '../../src/home/layout.js';

let home: string;
let agent: AgentPaths;

beforeAll(async () => {
  home = join(await tempDir('health-cli'), 'home');
  agent = (await deployTestAgent(home)).paths;
});

describe('animus health', () => {
  it('exits 0 with a documented JSON report when every agent is healthy', async () => {
    const result = await runCli(['health', '--json', '--no-process'], { home });
    expect(result.code, result.stderr).toBe(0);
    const report = json<HealthReport>(result);
    expect(Object.keys(report).sort()).toEqual(['agents', 'checkedAt', 'durationMs', 'healthy', 'home', 'processManagers', 'summary']);
    expect(report).toMatchObject({ healthy: true, summary: { agents: 1, healthy: 1, unhealthy: 0 } });
    expect(report.agents[0]!.checks.map((c) => c.name)).toEqual(['folder', 'env', 'settings', 'database', 'schema', 'clone', 'logs', 'process', 'queue', 'reply']);
  });

  it('asks PM2 without starting a daemon and exits 1 for an agent that is not running', async () => {
    const pm2Home = `${home}.pm2-health`;
    const result = await runCli(['health', agent.agent.id, '--json'], { home, pm2Home });
    expect(result.code, result.stderr).toBe(1);
    const report = json<HealthReport>(result);
    expect(report.processManagers).toEqual([{ name: 'pm2', available: true }]);
    expect(report.agents[0]!.checks.find((c) => c.name === 'process')).toMatchObject({ status: 'fail', message: expect.stringContaining('not registered') });
    expect(await readdir(pm2Home).catch(() => [])).not.toContain('pm2.pid');
  });

  it('shows a table of marks for people and exits 1 when a check fails', async () => {
    await chmod(agent.env, 0o644);
    try {
      const result = await runCli(['health', '--no-process'], { home });
      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`unhealthy  ${agent.agent.id}`);
      expect(result.stdout).toMatch(/✗ env\s+\.env mode 0644, expected 0600: chmod 600 /);
      expect(result.stdout).toMatch(/✓ database\s+opens, quick_check ok/);
    } finally {
      await chmod(agent.env, 0o600);
    }
  });

  it('exits 2 with one line when health cannot run, 3 for an agent or home that does not exist', async () => {
    for (const [args, code] of [[['health', '--home', join(home, 'missing')], 3], [['health', 'not-an-id'], 2], [['health', 'agent-00000000-0000-4000-8000-000000000000'], 3], [['health', '--watch', '0'], 2]] as const) {
      const result = await runCli([...args], { home });
      expect(result.code, args.join(' ')).toBe(code);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^animus: /);
    }
  });

  it('--watch re-checks until Ctrl-C, one JSON document per line', async () => {
    const child = execa('node', [BIN, 'health', '--watch', '1', '--json', '--no-process'], { env: cliEnv({ home }), extendEnv: false, reject: false, buffer: { stdout: true } });
    const lines: string[] = [];
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (data) => {
        lines.push(...String(data).split('\n').filter(Boolean));
        if (lines.length >= 2) resolve();
      });
    });
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(lines.slice(0, 2).map((line) => (JSON.parse(line) as HealthReport).healthy)).toEqual([true, true]);
  });
});
