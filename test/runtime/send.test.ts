import Database from 'better-sqlite3';
import { userInfo } from 'node:os';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { FAST_ENV, startRuntime, updateSettings } from './harness.js';

let home: string;

beforeAll(async () => {
  home = await tempDir('animus-send');
});

function queueCount(db: string): number {
  const handle = new Database(db, { readonly: true });
  try {
    return (handle.prepare('SELECT COUNT(*) AS n FROM queue').get() as { n: number }).n;
  } finally {
    handle.close();
  }
}

describe('animus send', () => {
  it('--wait prints the reply of a running echo agent (and --json an object)', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.queue_refresh = 5;
    });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    const user = userInfo().username;

    const plain = await runCli(['send', id, 'hello', 'there', '--wait'], { home });
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout.trim()).toBe(`[Username: @${user}, Local user: ${user}] hello there`);

    const result = await runCli(['send', id, 'second', '--wait', '--timeout', '20', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    expect(json(result)).toMatchObject({ agent: id, status: 'completed', mode: 'echo', runtimeRunning: true, reply: `[Username: @${user}, Local user: ${user}] second`, item: 2 });
  });

  it('queues without --wait when the runtime is not running, and says so', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    const result = await runCli(['send', id, 'later', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    expect(json(result)).toMatchObject({ agent: id, status: 'queued', runtimeRunning: false, item: 1 });
    expect(result.stderr).toContain('is not running');
    expect(queueCount(paths.db)).toBe(1);
  });

  it('--wait returns at once when the runtime is stopped, leaving the message queued', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    // A 600 s timeout: waiting it out would outlast runCli's own 60 s limit.
    const result = await runCli(['send', id, 'anyone?', '--wait', '--timeout', '600'], { home });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^animus: agent-[0-9a-f-]+'s runtime is not running: item 1 is queued and will be answered once it starts \(animus start agent-[0-9a-f-]+\)$/);
    expect(queueCount(paths.db)).toBe(1);
  });

  it('refuses --wait in listen mode without storing anything', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'listen' });
    const result = await runCli(['send', id, 'hello', '--wait'], { home });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringContaining('is in listen mode')]);
    expect(queueCount(paths.db)).toBe(0);
  });

  it.each([
    [['send', 'agent-00000000-0000-4000-8000-000000000000', 'hi'], 3, /no agent agent-00000000-0000-4000-8000-000000000000/],
    [['send', 'not-an-id', 'hi'], 2, /is not an agent id/],
    [['send', 'agent-00000000-0000-4000-8000-000000000000', 'hi', '--wait', '--timeout', 'soon'], 2, /--timeout "soon" is not a number/],
  ])('fails with one line: %j', async (args, code, pattern) => {
    const result = await runCli(args, { home });
    expect(result.code).toBe(code);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
  });
});

describe('animus telegram login', () => {
  it('refuses without a terminal, in one line', async () => {
    const { id } = await deployTestAgent(home, { mode: 'echo' });
    const result = await runCli(['telegram', 'login', id], { home });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('animus: telegram login asks for the code Telegram sends you: run it in an interactive terminal (without --yes)');
  });
});

describe('animus send and DB_PATH', () => {
  it("refuses a DB_PATH that points at another agent's database, and writes nothing there", async () => {
    const victim = await deployTestAgent(home, { mode: 'echo' });
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    const { appendFile } = await import('node:fs/promises');
    await appendFile(paths.env, `DB_PATH=${victim.paths.db}\n`);
    const result = await runCli(['send', id, 'into the wrong database'], { home });
    expect(result.code).toBe(5);
    expect(result.stderr.trim()).toBe(`animus: DB_PATH=${victim.paths.db} in ${paths.env} is outside the agent folder: remove it (the database is animus.db) or point it at a file inside ${paths.dir}`);
    expect(queueCount(victim.paths.db)).toBe(0);
    expect(queueCount(paths.db)).toBe(0);
  });

  it('writes where a DB_PATH inside the folder points, which is where the runtime reads', async () => {
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    const { appendFile, copyFile } = await import('node:fs/promises');
    await copyFile(paths.db, `${paths.dir}/queue.db`);
    await appendFile(paths.env, 'DB_PATH=queue.db\n');
    const result = await runCli(['send', id, 'hello'], { home });
    expect(result.code, result.stderr).toBe(0);
    expect(queueCount(`${paths.dir}/queue.db`)).toBe(1);
    expect(queueCount(paths.db)).toBe(0);
  });
});
