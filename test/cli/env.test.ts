import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, oneErrorLine, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from '../process/fixture.js';

const KEY = 'sk-let-4f9a1c2e8b7d';
let home: string;
let repo: string;

beforeAll(async () => {
  const root = await tempDir('animus-env');
  home = join(root, 'home');
  repo = await makeFixtureRuntime(join(root, 'runtime.git'));
}, 60_000);

const cli = (args: string[], input?: string): Promise<CliResult> => runCli(args, { home, input });

describe('animus env', () => {
  it('sets, shows (secrets redacted) and unsets one variable, keeping .env at 0600 and its other lines', async () => {
    const { paths } = await deployTestAgent(home, { repo, mode: 'live', endpoint: 'https://letta.internal', apiKey: KEY });
    const before = await readFile(paths.env, 'utf8');
    const set = await cli(['env', 'set', paths.agent.id, 'TELEGRAM_OWNER_ID', '12345678', '--json']);
    expect(set.code, set.stderr).toBe(0);
    expect(json(set)).toEqual({ agent: paths.agent.id, key: 'TELEGRAM_OWNER_ID', changed: true, existed: false, appliesAt: 'restart' });
    const after = await readFile(paths.env, 'utf8');
    expect(after).toContain('TELEGRAM_OWNER_ID=12345678');
    for (const line of before.split('\n').filter((l) => l && !l.startsWith('# TELEGRAM_OWNER_ID'))) expect(after).toContain(line);
    expect((await stat(paths.env)).mode & 0o777).toBe(0o600);

    const key = await cli(['env', 'set', '--agent', paths.agent.id, `AGENT_API_KEY=sk-let-9b8c7d6e5f4a`]);
    expect(key.code, key.stderr).toBe(0);
    const shown = await cli(['env', 'show', paths.agent.id]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).not.toContain('sk-let-9b8c7d6e5f4a');
    expect(shown.stdout).toMatch(/AGENT_API_KEY\s+\[REDACTED\]/);
    expect(shown.stdout).toMatch(/AGENT_ENDPOINT\s+https:\/\/letta.internal/);
    const one = json<{ value: string; secret: boolean }>(await cli(['env', 'show', paths.agent.id, 'AGENT_API_KEY', '--json']));
    expect(one).toMatchObject({ value: '[REDACTED]', secret: true });

    const unset = await cli(['env', 'unset', paths.agent.id, 'TELEGRAM_OWNER_ID', '--json']);
    expect(json(unset)).toMatchObject({ changed: true });
    expect(await readFile(paths.env, 'utf8')).not.toMatch(/^TELEGRAM_OWNER_ID=/m);
    expect(json(await cli(['env', 'unset', paths.agent.id, 'TELEGRAM_OWNER_ID', '--json']))).toMatchObject({ changed: false });
  });

  it('reads a secret from --stdin, keeping it out of the arguments', async () => {
    const { paths } = await deployTestAgent(home, { repo });
    const result = await cli(['env', 'set', paths.agent.id, 'TELEGRAM_BOT_TOKEN', '--stdin'], '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q\n');
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(paths.env, 'utf8')).toMatch(/^TELEGRAM_BOT_TOKEN=7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q$/m);
  });

  it.each([
    ['a bad key', ['1BAD', 'x'], /"1BAD" is not a valid variable name/],
    ['a key with an injected line', ['A=1\nB', 'x'], /is not a valid variable name/],
    ['a value with a line break (another variable injected)', ['LOG_LEVEL', 'info\nAGENT_ID=agent-x'], /contains a line break/],
    ['a placeholder for a key the runtime checks', ['AGENT_API_KEY', 'your_api_key_here'], /looks like a placeholder/],
    ['no value', ['LOG_LEVEL'], /missing <value>/],
  ])('refuses %s in one line, exit 2, .env untouched', async (_label, args, message) => {
    const { paths } = await deployTestAgent(home, { repo });
    const before = await readFile(paths.env, 'utf8');
    expect(oneErrorLine(await cli(['env', 'set', paths.agent.id, ...args]), 2)).toMatch(message);
    expect(await readFile(paths.env, 'utf8')).toBe(before);
  });

  it('refuses to write into a malformed .env, naming its line (exit 5), and an unknown agent is exit 3', async () => {
    const { paths } = await deployTestAgent(home, { repo });
    await writeFile(paths.env, 'AGENT_ID=x\nthis is not an assignment\n', { mode: 0o600 });
    expect(oneErrorLine(await cli(['env', 'set', paths.agent.id, 'LOG_LEVEL', 'debug']), 5)).toMatch(/line 2 is not KEY=VALUE/);
    expect(oneErrorLine(await cli(['env', 'show', 'agent-00000000-0000-4000-8000-000000000000']), 3)).toMatch(/no agent/);
  });

  it("is what health's hint for a broken .env names", async () => {
    const { paths } = await deployTestAgent(home, { repo, mode: 'live' });
    const health = await cli(['health', paths.agent.id]);
    expect(health.stdout + health.stderr).toMatch(/animus env set/);
    const help = await cli(['env', 'set', '--help']);
    expect(help.code).toBe(0);
  });
});
