import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { deployTestAgent } from '../helpers/agents.js';

interface Entry {
  id: string;
  name?: string;
  mode?: string;
  commit?: string;
  problems: string[];
}

const GOOD = '721679f6-c8af-4e01-8677-dc042dc80368';
const BROKEN = '9a2b3c4d-5e6f-7890-abcd-ef1234567890';

describe('animus list', () => {
  let home: string;
  beforeAll(async () => {
    home = join(await tempDir('list'), 'home');
    await deployTestAgent(home, { uuid: GOOD, mode: 'listen' });
    const broken = await deployTestAgent(home, { uuid: BROKEN });
    await writeFile(broken.paths.settings, '{ "agent": { "id": 1 }, "message_mode": "shout" }');
    await mkdir(join(home, 'agent-notes'));
    await writeFile(join(home, 'agent-0b6c7a42-1f0e-4c57-9b8e-3a4e6f1d2c3b'), 'a file, not a folder');
    await mkdir(join(home, 'unrelated'));
  });

  it('lists every agent folder, with what is wrong with the broken ones, and exits 0', async () => {
    const result = await runCli(['list', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const entries = json<Entry[]>(result);
    expect(entries.map((e) => e.id)).toEqual([`agent-${GOOD}`, `agent-${BROKEN}`, 'agent-0b6c7a42-1f0e-4c57-9b8e-3a4e6f1d2c3b', 'agent-notes'].sort());
    const byId = new Map(entries.map((e) => [e.id, e]));
    expect(byId.get(`agent-${GOOD}`)).toMatchObject({ mode: 'listen', problems: [], commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(byId.get(`agent-${BROKEN}`)!.problems.join(';')).toMatch(/agent.id is missing|message_mode must be one of/);
    expect(byId.get('agent-notes')!.problems.join(';')).toMatch(/not agent-<uuid>/);
    expect(byId.get('agent-0b6c7a42-1f0e-4c57-9b8e-3a4e6f1d2c3b')!.problems).toEqual(['not a folder']);
  });

  it('prints a table for people', async () => {
    const result = await runCli(['list'], { home });
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toMatch(/^AGENT\s+NAME\s+MODE\s+PM\s+RUNTIME\s+STATE\s+PROBLEMS$/);
    expect(result.stdout).toMatch(new RegExp(`agent-${GOOD}\\s+listen\\s+pm2\\s+[0-9a-f]{12}`));
  });

  it('says so when the home is empty or missing', async () => {
    const missing = join(await tempDir('list-empty'), 'none');
    const result = await runCli(['list', '--json'], { home: missing });
    expect(result.code).toBe(3);
    expect(result.stderr.trim()).toBe(`animus: no animus home at ${missing}: run \`animus init --home ${missing}\``);
    const { mkdir } = await import('node:fs/promises');
    await mkdir(missing);
    const empty = await runCli(['list', '--json'], { home: missing });
    expect(empty.code).toBe(0);
    expect(json(empty)).toEqual([]);
  });
});

describe('animus remove', () => {
  it('refuses without a terminal or --yes and leaves the agent', async () => {
    const home = join(await tempDir('remove'), 'home');
    const { paths } = await deployTestAgent(home, { uuid: GOOD });
    const result = await runCli(['remove', GOOD], { home });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/pass --yes/);
    expect((await stat(paths.dir)).isDirectory()).toBe(true);
  });

  it('moves the folder into a dated trash folder with --yes', async () => {
    const home = join(await tempDir('remove'), 'home');
    const { paths } = await deployTestAgent(home, { uuid: GOOD });
    const result = await runCli(['remove', `agent-${GOOD}`, '--yes', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ trashedTo: string }>(result);
    await expect(stat(paths.dir)).rejects.toThrow();
    const day = new Date().toISOString().slice(0, 10);
    expect(out.trashedTo).toMatch(new RegExp(`/\\.trash/${day}/agent-${GOOD}-\\d{6}$`));
    expect(await readdir(out.trashedTo)).toEqual(expect.arrayContaining(['.env', 'animus.db', 'runtime', 'settings.json', 'logs']));
    // The id is free again.
    expect((await runCli(['deploy', GOOD, '--mode', 'echo'], { home })).code).toBe(0);
  });

  it('deletes with --purge', async () => {
    const home = join(await tempDir('remove'), 'home');
    const { paths } = await deployTestAgent(home, { uuid: GOOD });
    const result = await runCli(['remove', GOOD, '--purge', '--yes'], { home });
    expect(result.code, result.stderr).toBe(0);
    await expect(stat(paths.dir)).rejects.toThrow();
    await expect(stat(join(home, '.trash'))).rejects.toThrow();
  });

  it.each([
    [[BROKEN, '--yes'], 3, /no agent agent-9a2b.* run `animus list`/],
    [['../agent-x', '--yes'], 2, /contains a path/],
  ])('refuses %j', async (args, code, message) => {
    const home = join(await tempDir('remove'), 'home');
    await deployTestAgent(home, { uuid: GOOD });
    const result = await runCli(['remove', ...args], { home });
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
    expect((await readdir(home)).filter((n) => n.startsWith('agent-'))).toEqual([`agent-${GOOD}`]);
  });
});
