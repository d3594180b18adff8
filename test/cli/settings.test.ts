import { readFile, stat } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { SETTINGS_FIELDS } from '../../src/config/settings.js';

let home: string;
let agent: string;
let file: string;

beforeAll(async () => {
  home = `${await tempDir('cli-settings')}/home`;
  const deployed = await deployTestAgent(home, { mode: 'echo' });
  agent = deployed.id;
  file = deployed.paths.settings;
});

describe('animus settings', () => {
  it('shows every key with its value, default and meaning', async () => {
    const result = await runCli(['settings', 'show', agent, '--json'], { home });
    expect(result.code).toBe(0);
    const shown = json<{ agent: string; settings: { message_mode: string }; fields: Array<{ key: string; value: unknown; default: unknown; description: string }> }>(result);
    expect(shown.agent).toBe(agent);
    expect(shown.settings.message_mode).toBe('echo');
    expect(shown.fields.map((f) => f.key)).toEqual(SETTINGS_FIELDS.map((f) => f.path));
    expect(shown.fields.find((f) => f.key === 'message_mode')).toMatchObject({ value: 'echo', default: 'live', description: expect.stringContaining('echo | listen | live') });
    const one = await runCli(['settings', 'show', '--agent', agent, 'max_retries'], { home });
    expect(one.stdout.trim()).toBe('3');
  });

  it('sets a key atomically (0600, validated JSON) and reports the change', async () => {
    const result = await runCli(['settings', 'set', agent, 'message_mode', 'listen', '--json'], { home });
    expect(result.code).toBe(0);
    expect(json(result)).toEqual({ agent, key: 'message_mode', previous: 'echo', value: 'listen', changed: true, appliesLive: true });
    const saved = JSON.parse(await readFile(file, 'utf8')) as { message_mode: string };
    expect(saved.message_mode).toBe('listen');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const limit = json(await runCli(['settings', 'set', '--agent', agent, 'memory_limit_mb', '512', '--json'], { home }));
    expect(limit).toMatchObject({ value: 512, appliesLive: false });
  });

  it('leaves the file untouched when the value is the same', async () => {
    await runCli(['settings', 'set', agent, 'debug_mode', 'true'], { home });
    const mtime = (await stat(file)).mtimeMs;
    const same = await runCli(['settings', 'set', agent, 'debug_mode', 'on'], { home });
    expect(same.stdout).toMatch(/already true: nothing changed/);
    expect((await stat(file)).mtimeMs).toBe(mtime);
  });

  it("refuses a value the agent's .env cannot serve (the runtime would ignore it), unless --force", async () => {
    const before = await readFile(file, 'utf8');
    const refused = await runCli(['settings', 'set', agent, 'message_mode', 'live'], { home });
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/message_mode = live needs what .*\.env lacks: .*AGENT_API_KEY.*pass --force; nothing was changed/);
    expect(await readFile(file, 'utf8')).toBe(before);
    const forced = await runCli(['settings', 'set', agent, 'plugins.telegram_bot.enabled', 'true', '--force', '--json'], { home });
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/will refuse this change until .env is fixed: TELEGRAM_BOT_TOKEN is missing/);
    // Problems that were already there do not block an unrelated change.
    expect((await runCli(['settings', 'set', agent, 'queue_refresh', '2'], { home })).code).toBe(0);
  });

  it.each([
    [['settings', 'set', 'AGENT', 'message_mode', 'loud'], /invalid value "loud" for message_mode: expected one of echo, listen, live/],
    [['settings', 'set', 'AGENT', 'max_retries', '-1'], /invalid value "-1" for max_retries/],
    [['settings', 'set', 'AGENT', 'agent.id', 'x'], /agent.id cannot be changed/],
    [['settings', 'set', 'AGENT', 'nope', '1'], /unknown setting "nope"/],
    [['settings', 'set', 'AGENT', 'message_mode'], /missing <value>/],
    [['settings', 'show', 'AGENT', 'nope'], /unknown setting "nope"/],
  ])('%j is refused and the file is unchanged', async (args, message) => {
    const before = await readFile(file, 'utf8');
    const result = await runCli(args.map((a) => (a === 'AGENT' ? agent : a)), { home });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await readFile(file, 'utf8')).toBe(before);
  });
});
