import { copyFile, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { runCli } from '../helpers/cli.js';
import { killMidway } from '../helpers/kill-midway.js';
import { tempDir } from '../helpers/temp.js';
import { backupAgent } from '../../src/backup/create-backup.js';
import type { AgentPaths } from '../../src/home/layout.js';
import { swapJournalOf } from '../../src/instances/operation-lock.js';

/**
 * A restore SIGKILLed between its renames, as a real CLI process: caught when its
 * journal says the database is in place and .env is not yet (the state the issue saw:
 * the database restored beside the old .env). The next command that takes the agent's
 * lock finishes the swap while the killed restore's staged files are there, and puts
 * every file back as it was once they are gone (`animus init` removes them).
 */
let root: string;
let home: string;
let agent: AgentPaths;
let archive: string;
const restored = { env: '', settings: '', messages: 0 };
const before = { env: '', settings: '', messages: 0, db: '' };

const messages = (file: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

beforeAll(async () => {
  root = await tempDir('restore-killed');
  home = join(root, 'home');
  agent = (await deployTestAgent(home)).paths;
  const db = new Database(agent.db);
  db.exec("INSERT INTO messages (role, message, timestamp) VALUES ('user', 'in the archive', datetime('now'))");
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  archive = (await backupAgent(agent, { outDir: join(root, 'archives') })).archive;
  Object.assign(restored, { env: await readFile(agent.env, 'utf8'), settings: await readFile(agent.settings, 'utf8'), messages: messages(agent.db) });

  // The agent as it is when the restore runs: a message more, another .env and settings.json.
  before.db = join(root, 'before.db');
  await copyFile(agent.db, before.db);
  const later = new Database(before.db);
  later.exec("INSERT INTO messages (role, message, timestamp) VALUES ('user', 'after the backup', datetime('now'))");
  later.close();
  before.env = `${restored.env}LOG_LEVEL=debug\n`;
  before.settings = `${JSON.stringify({ ...JSON.parse(restored.settings), max_retries: 7 }, null, 2)}\n`;
  before.messages = restored.messages + 1;
}, 60_000);

async function putBack(): Promise<void> {
  for (const suffix of ['-wal', '-shm']) await rm(`${agent.db}${suffix}`, { force: true });
  await copyFile(before.db, agent.db);
  await writeFile(agent.env, before.env, { mode: 0o600 });
  await writeFile(agent.settings, before.settings, { mode: 0o600 });
}

/** The journal says the database's moves are done and .env's first one is next, and .env has not moved yet. */
function betweenDatabaseAndEnv(): boolean {
  if (!existsSync(agent.env)) return false;
  let journal: { done: number; moves: Array<{ kind: string; from: string; to: string }> };
  try {
    journal = JSON.parse(readFileSync(swapJournalOf(agent), 'utf8'));
  } catch {
    return false;
  }
  const envMove = journal.moves.findIndex((move) => move.from === agent.env || move.to === agent.env);
  return envMove > 0 && journal.done === envMove;
}

async function killBetweenRenames(): Promise<void> {
  await killMidway(['restore', agent.agent.id, '--from', archive, '--yes', '--no-start'], { home }, betweenDatabaseAndEnv, { attempts: 40, before: putBack });
  // What the killed restore left: the database restored, .env and settings.json as they were.
  expect(messages(agent.db)).toBe(restored.messages);
  expect(await readFile(agent.env, 'utf8')).toBe(before.env);
  expect(await readFile(agent.settings, 'utf8')).toBe(before.settings);
}

describe('a restore killed between its renames', () => {
  it('is finished by the next command on the agent, which says so', async () => {
    await killBetweenRenames();
    // status only reads: it says what happened and what finishes it, and leaves the swap as it is.
    const status = await runCli(['status', agent.agent.id, '--json'], { home });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)[0].problem).toMatch(
      new RegExp(`the restore of ${agent.agent.id} \\(pid \\d+, since [^)]+\\) was interrupted half-way: the next command that changes the agent finishes or undoes it first \\(for example \`animus start ${agent.agent.id}\`\\)`),
    );
    const health = await runCli(['health', agent.agent.id, '--json', '--offline'], { home });
    expect(health.code, health.stderr).toBe(1);
    expect(JSON.parse(health.stdout).agents[0].checks).toContainEqual({ name: 'restore', status: 'fail', message: JSON.parse(status.stdout)[0].problem });
    expect(existsSync(swapJournalOf(agent))).toBe(true);
    expect(await readFile(agent.env, 'utf8')).toBe(before.env);
    const next = await runCli(['backup', agent.agent.id, '--out', join(root, 'after'), '--json'], { home });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(/the restore of agent-\S+ from \S+ \(pid \d+, since [^)]+\) was interrupted after it had verified everything: its remaining files were moved into place/);
    expect(messages(agent.db)).toBe(restored.messages);
    expect(await readFile(agent.env, 'utf8')).toBe(restored.env);
    expect(await readFile(agent.settings, 'utf8')).toBe(restored.settings);
    // What it replaced is kept, as a restore that ran to its end keeps it.
    const kept = (await readdir(agent.dir)).filter((name) => name.startsWith('.env.pre-restore-'));
    expect(kept.length).toBeGreaterThan(0);
    expect(await Promise.all(kept.map((name) => readFile(join(agent.dir, name), 'utf8')))).toContain(before.env);
    await expect(readFile(swapJournalOf(agent))).rejects.toThrow();
  }, 300_000);

  it('is undone by the next command once its staged files are gone, leaving every file as it was', async () => {
    await killBetweenRenames();
    expect((await runCli(['init'], { home })).code).toBe(0);
    const next = await runCli(['env', 'show', agent.agent.id], { home });
    expect(next.code, next.stderr).toBe(0);
    // env show only reads: the swap is still half-done until a command takes the lock.
    expect(next.stderr).not.toMatch(/interrupted/);
    const locked = await runCli(['backup', agent.agent.id, '--out', join(root, 'after-undo'), '--json'], { home });
    expect(locked.code, locked.stderr).toBe(0);
    expect(locked.stderr).toMatch(/was interrupted and could not be finished \(its staged files are gone\): the agent has its files from before again; run the restore again/);
    expect(messages(agent.db)).toBe(before.messages);
    expect(await readFile(agent.env, 'utf8')).toBe(before.env);
    expect(await readFile(agent.settings, 'utf8')).toBe(before.settings);
    await expect(readFile(swapJournalOf(agent))).rejects.toThrow();

    // And a restore run to its end afterwards restores everything.
    const again = await runCli(['restore', agent.agent.id, '--from', archive, '--yes', '--no-start'], { home });
    expect(again.code, again.stderr).toBe(0);
    expect(messages(agent.db)).toBe(restored.messages);
    expect(await readFile(agent.env, 'utf8')).toBe(restored.env);
  }, 300_000);
});
