import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { readFile, rm } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

let home: string;
let agent: string;
let db: string;

beforeAll(async () => {
  home = `${await tempDir('cli-users')}/home`;
  const deployed = await deployTestAgent(home);
  agent = deployed.id;
  db = deployed.paths.db;
  await rm(db);
  makeBrocaDatabase(db);
});

describe('animus users', () => {
  it('lists and gets users of a Broca-made database read-only', async () => {
    const before = await readFile(db);
    const list = await runCli(['users', 'list', agent, '--json'], { home });
    expect(list.code).toBe(0);
    expect(json<{ users: Array<{ id: number; isActive: boolean }> }>(list).users.map((u) => [u.id, u.isActive])).toEqual([
      [1, true],
      [2, false],
    ]);
    const get = await runCli(['users', 'get', '--agent', agent, '@user2', '--json'], { home });
    expect(json(get)).toMatchObject({ agent, id: 2, isActive: false, username: 'user2', messages: 6 });
    const table = await runCli(['users', 'get', agent, '1'], { home });
    expect(table.stdout).toMatch(/user 1 of .*: active/);
    expect((await readFile(db)).equals(before)).toBe(true);
  });

  it('activates and deactivates', async () => {
    const on = await runCli(['users', 'activate', agent, '2', '--json'], { home });
    expect(json(on)).toEqual({ agent, id: 2, isActive: true, changed: true, migrated: { from: 0, to: SCHEMA_VERSION } });
    const again = await runCli(['users', 'activate', agent, '2'], { home });
    expect(again.stdout).toMatch(/was already active/);
    const off = await runCli(['users', 'deactivate', '--agent', agent, 'telegram:1001'], { home });
    expect(off.code).toBe(0);
    const list = json<{ users: Array<{ isActive: boolean }> }>(await runCli(['users', 'list', agent, '--json'], { home }));
    expect(list.users.map((u) => u.isActive)).toEqual([false, true]);
  });

  it.each([
    [['users', 'get', 'AGENT'], 2, /missing <user>/],
    [['users', 'get', '7'], 2, /which agent\?/],
    [['users', 'get', 'AGENT', '99'], 3, /no user 99/],
    [['users', 'deactivate', 'AGENT', 'bob'], 2, /is not a user/],
  ])('%j exits %i', async (args, code, message) => {
    const result = await runCli(args.map((a) => (a === 'AGENT' ? agent : a)), { home });
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });
});
