import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { readFile, rm, stat } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import type { QueueList, QueueStats } from '../../src/store/queue-admin.js';

let home: string;
let agent: string;
let db: string;

/** Gives the agent a database exactly as Broca left it. */
async function resetToBroca(): Promise<void> {
  await rm(db, { force: true });
  await rm(`${db}-wal`, { force: true });
  await rm(`${db}-shm`, { force: true });
  makeBrocaDatabase(db);
}

beforeAll(async () => {
  home = `${await tempDir('cli-queue')}/home`;
  const deployed = await deployTestAgent(home);
  agent = deployed.id;
  db = deployed.paths.db;
});

describe('animus queue', () => {
  it('lists a Broca-made database without changing a byte of it', async () => {
    await resetToBroca();
    const before = await readFile(db);
    const mtime = (await stat(db)).mtimeMs;
    const result = await runCli(['queue', 'list', agent, '--json'], { home });
    expect(result.code).toBe(0);
    const list = json<QueueList>(result);
    expect(list).toMatchObject({ agent, statuses: ['pending', 'processing', 'failed'], total: 8, limit: 100 });
    expect(list.items[0]).toMatchObject({ id: 1, status: 'pending', message: 'hello 1.0', user: { username: 'user1', displayName: 'User 1' } });
    const table = await runCli(['queue', 'list', '--agent', agent, '--status', 'failed'], { home });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/ID\s+STATUS\s+TRIES/);
    expect(table.stdout).toContain('User 2 (@user2)');
    expect(table.stdout).not.toContain('pending');
    const stats = json<QueueStats>(await runCli(['queue', 'stats', agent, '--json'], { home }));
    expect(stats.counts).toEqual({ pending: 4, processing: 2, completed: 2, failed: 2, flushed: 2 });
    expect((await readFile(db)).equals(before)).toBe(true);
    expect((await stat(db)).mtimeMs).toBe(mtime);
  });

  it('stats every agent of the home when none is given', async () => {
    await resetToBroca();
    const all = json<QueueStats[]>(await runCli(['queue', 'stats', '--json'], { home }));
    expect(all.map((s) => s.agent)).toEqual([agent]);
  });

  it('flush asks first, and with --yes upgrades the Broca file (saying so) and flushes the pending items', async () => {
    await resetToBroca();
    const refused = await runCli(['queue', 'flush', agent], { home });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/no terminal to confirm on; pass --yes/);
    const done = await runCli(['queue', 'flush', agent, '--yes', '--json'], { home });
    expect(done.code).toBe(0);
    expect(json(done)).toEqual({ agent, flushed: 4, ids: [1, 2, 7, 8], migrated: { from: 0, to: SCHEMA_VERSION } });
    expect(done.stderr).toMatch(new RegExp(`upgraded .*animus\\.db from schema 0 to ${SCHEMA_VERSION} before writing`));
    const left = json<QueueList>(await runCli(['queue', 'list', agent, '--status', 'pending', '--json'], { home }));
    expect(left.total).toBe(0);
    await resetToBroca();
    // One named item needs no confirmation.
    const one = await runCli(['queue', 'flush', agent, '--id', '7', '--json'], { home });
    expect(one.code, one.stderr).toBe(0);
    expect(json(one)).toMatchObject({ flushed: 1, ids: [7] });
  });

  it('delete and retry act on the named items and refuse what they must', async () => {
    await resetToBroca();
    const deleted = await runCli(['queue', 'delete', agent, '--id', '1,2', '--json'], { home });
    expect(json(deleted)).toMatchObject({ deleted: 2, ids: [1, 2] });
    const busy = await runCli(['queue', 'delete', agent, '--id', '3'], { home });
    expect(busy.code).toBe(4);
    expect(busy.stderr).toMatch(/being processed by the runtime/);
    const retried = await runCli(['queue', 'retry', '--agent', agent, '--failed', '--json'], { home });
    expect(json(retried)).toMatchObject({ retried: 2, ids: [4, 10] });
    const all = await runCli(['queue', 'delete', agent, '--all'], { home });
    expect(all.code).toBe(2);
    const allYes = json<{ deleted: number; skipped: number[] }>(await runCli(['queue', 'delete', agent, '--all', '--yes', '--json'], { home }));
    // Broca's --all: pending (4, 7, 8, 10 after the retry), processing (3, 9: skipped while the runtime may hold them) and failed; completed and flushed stay.
    expect(allYes).toMatchObject({ deleted: 4, ids: [4, 7, 8, 10], skipped: [3, 9] });
    const left = json<{ items: Array<{ id: number; status: string }> }>(await runCli(['queue', 'list', agent, '--status', 'all', '--json'], { home }));
    expect(left.items.map((i) => `${i.id}:${i.status}`).sort()).toEqual(['11:completed', '12:flushed', '3:processing', '5:completed', '6:flushed', '9:processing']);
    const text = await runCli(['queue', 'delete', agent, '--all', '--yes'], { home });
    expect(text.stdout).toMatch(/deleted 0 item\(s\) .*\(pending, processing, failed; other statuses kept\)/);
  });

  it.each([
    [['queue', 'list'], 2, /which agent\? pass --agent/],
    [['queue', 'list', 'agent-00000000-0000-4000-8000-00000000abcd'], 3, /no agent agent-00000000-0000-4000-8000-00000000abcd/],
    [['queue', 'list', 'AGENT', '--status', 'done'], 2, /--status done is not a queue status/],
    [['queue', 'list', 'AGENT', '--limit', '0'], 2, /--limit "0" is not valid/],
    [['queue', 'delete', 'AGENT'], 2, /pass either --id N or --all/],
    [['queue', 'delete', 'AGENT', '--id', 'x'], 2, /--id "x" is not an item id/],
    [['queue', 'delete', 'AGENT', '--id', '999'], 3, /no queue item 999/],
    [['queue', 'retry', 'AGENT', '--id', '5'], 4, /only failed or flushed items are retried/],
    [['queue', 'list', 'AGENT', '--agent', 'AGENT'], 2, /given twice/],
  ])('%j exits %i with one line', async (args, code, message) => {
    await resetToBroca();
    const result = await runCli(args.map((a) => (a === 'AGENT' ? agent : a)), { home });
    expect(result.code).toBe(code);
    // A write first upgrades the Broca-made file and says so on its own line.
    expect(result.stderr.trim().split('\n').filter((line) => !line.startsWith('upgraded '))).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports a corrupt database as invalid data', async () => {
    await rm(db, { force: true });
    await import('node:fs/promises').then((fs) => fs.writeFile(db, 'not a database at all, just text'.repeat(100)));
    const result = await runCli(['queue', 'list', agent], { home });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/not a SQLite database or is corrupt/);
  });
});
