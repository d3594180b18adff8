import { readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseSince } from '../../src/audit/audit-log.js';
import { redactArgs } from '../../src/audit/redact-args.js';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from '../process/fixture.js';

const KEY = 'sk-let-4f9a1c2e8b7d';
const TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
let root: string;
let home: string;
let repo: string;

beforeAll(async () => {
  root = await tempDir('animus-audit');
  home = join(root, 'home');
  repo = await makeFixtureRuntime(join(root, 'runtime.git'));
}, 60_000);

const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { home, env });

interface Records {
  file: string;
  records: Array<{ command: string; args: string[]; agents: string[]; outcome: string; exitCode: number; user: string; time: string; error?: string }>;
}

describe('the audit log', () => {
  it('records each changing command once, in the home and the agent, with secrets redacted, and nothing for reads', async () => {
    const { paths } = await deployTestAgent(home, { repo });
    const id = paths.agent.id;
    expect((await cli(['env', 'set', id, 'TELEGRAM_BOT_TOKEN', TOKEN])).code).toBe(0);
    expect((await cli(['env', 'set', id, `AGENT_API_KEY=${KEY}`])).code).toBe(0);
    expect((await cli(['settings', 'set', id, 'max_retries', '4'])).code).toBe(0);
    expect((await cli(['settings', 'set', id, 'no_such_key', '4'])).code).toBe(2);
    expect((await cli(['settings', 'show', id])).code).toBe(0);
    expect((await cli(['env', 'show', id])).code).toBe(0);
    expect((await cli(['list'])).code).toBe(0);

    const all = json<Records>(await cli(['audit', '--json']));
    expect(all.records.map((r) => `${r.command} ${r.outcome} ${r.exitCode}`)).toEqual(['env set ok 0', 'env set ok 0', 'settings set ok 0', 'settings set failed 2']);
    expect(all.records[0]!.args).toEqual(['env', 'set', id, 'TELEGRAM_BOT_TOKEN', '[REDACTED]']);
    expect(all.records[1]!.args).toEqual(['env', 'set', id, 'AGENT_API_KEY=[REDACTED]']);
    expect(all.records[3]!.error).toMatch(/unknown setting "no_such_key"/);
    for (const record of all.records) expect(record.agents).toEqual([id]);

    for (const file of [join(home, '.animus', 'audit.log'), join(paths.logs, 'audit.log')]) {
      const text = await readFile(file, 'utf8');
      expect(text).not.toContain(KEY);
      expect(text).not.toContain(TOKEN);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    const own = json<Records>(await cli(['audit', '--agent', id, '--json']));
    expect(own.file).toBe(join(paths.logs, 'audit.log'));
    expect(own.records).toHaveLength(4);
    const table = await cli(['audit']);
    expect(table.stdout).toMatch(/settings set .* max_retries 4\s+ok/);
  });

  it("a fleet command's record names every agent in the home's trail, and only itself in each agent's own", async () => {
    const fleet = await Promise.all([0, 1, 2].map(async () => (await deployTestAgent(home, { repo })).paths));
    const before = await Promise.all(fleet.map((paths) => readFile(join(paths.logs, 'audit.log'), 'utf8').catch(() => '')));
    expect((await cli(['backup', '--all', '--out', join(root, 'fleet-backups')])).code).toBe(0);
    const all = json<Records>(await cli(['audit', '--json']));
    const record = all.records.at(-1)!;
    expect(record.command).toBe('backup');
    expect(record.agents).toEqual(expect.arrayContaining(fleet.map((paths) => paths.agent.id)));
    for (const [i, paths] of fleet.entries()) {
      const text = (await readFile(join(paths.logs, 'audit.log'), 'utf8')).slice(before[i]!.length);
      expect(JSON.parse(text.trim())).toMatchObject({ command: 'backup', args: ['backup', '--all', '--out', join(root, 'fleet-backups')], agents: [paths.agent.id], outcome: 'ok' });
    }
  });

  it('redacts a secret given through the environment wherever it appears in the arguments', () => {
    expect(redactArgs(['deploy', 'x', '--api-key', KEY, '--env', `TELEGRAM_BOT_TOKEN=${TOKEN}`, `--passphrase=hunter22`], {})).toEqual([
      'deploy', 'x', '--api-key', '[REDACTED]', '--env', 'TELEGRAM_BOT_TOKEN=[REDACTED]', '--passphrase=[REDACTED]',
    ]);
    expect(redactArgs(['send', 'x', `the key is ${KEY}`], { AGENT_API_KEY: KEY })).toEqual(['send', 'x', 'the key is [REDACTED]']);
  });

  it('--since takes an ISO time or an age, and refuses anything else in one line (exit 2)', async () => {
    expect(parseSince('2h', Date.parse('2026-12-01T08:00:00Z')).toISOString()).toBe('2026-12-01T06:00:00.000Z');
    const future = json<Records>(await cli(['audit', '--since', '2999-01-01T00:00:00Z', '--json']));
    expect(future.records).toEqual([]);
    const bad = await cli(['audit', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('never follows a symlink planted as the agent\'s audit.log: the command still runs and says the record was not written', async () => {
    const { paths } = await deployTestAgent(home, { repo });
    const outside = join(root, 'outside.txt');
    await writeFile(outside, 'untouched\n');
    await rm(join(paths.logs, 'audit.log'), { force: true });
    await symlink(outside, join(paths.logs, 'audit.log'));
    const result = await cli(['settings', 'set', paths.agent.id, 'max_retries', '6']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/audit record not written: .*symbolic link/);
    expect(await readFile(outside, 'utf8')).toBe('untouched\n');
  });
});
