import { execa } from 'execa';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { agentIdFromUuid } from '../src/core/agent-id.js';
import { runPool } from '../src/core/pool.js';
import { deployAgent } from '../src/instances/deploy.js';

/**
 * A home of `count` agent folders for benchmarks: one real deploy (clone, .env,
 * settings.json, migrated database with some traffic), then copies of it with
 * their own ids, timestamps kept so each clone's index still matches its files.
 * `fill` adds rows to the first database before it is copied.
 */
export async function makeFleet(count: number, options: { fill?: (dbPath: string) => void; byHand?: boolean } = {}): Promise<{ root: string; home: string; ids: string[]; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'animus-bench-'));
  const home = join(root, 'animus');
  const first = agentIdFromUuid(randomUUID());
  const deployed = await deployAgent({ home, agent: first, mode: 'echo', processManager: 'pm2', env: {} });
  const db = new Database(join(deployed.dir, 'animus.db'));
  const user = db.prepare("INSERT INTO letta_users (last_active) VALUES (datetime('now'))").run().lastInsertRowid;
  const message = db.prepare("INSERT INTO messages (letta_user_id, role, message, timestamp, processed, agent_response) VALUES (?, 'user', ?, datetime('now'), 1, ?)");
  const queue = db.prepare("INSERT INTO queue (letta_user_id, message_id, status) VALUES (?, ?, 'completed')");
  db.transaction(() => {
    for (let i = 0; i < 200; i++) queue.run(user, message.run(user, `message ${i} ${'lorem ipsum '.repeat(8)}`, `reply ${i} ${'dolor sit amet '.repeat(12)}`).lastInsertRowid);
  })();
  db.close();
  // More traffic for the benchmarks that need it (metrics), written before the copies are made.
  options.fill?.(join(deployed.dir, 'animus.db'));
  const settle = new Database(join(deployed.dir, 'animus.db'));
  settle.pragma('wal_checkpoint(TRUNCATE)');
  settle.close();

  const envText = await readFile(join(deployed.dir, '.env'), 'utf8');
  const settingsText = await readFile(join(deployed.dir, 'settings.json'), 'utf8');
  const ids = [first.id, ...Array.from({ length: count - 1 }, () => agentIdFromUuid(randomUUID()).id)];
  await runPool(ids.slice(1), 16, async (id) => {
    const dir = join(home, id);
    // cp -a keeps nanosecond mtimes (fs.cp rounds them), so each clone still matches its git index.
    await execa('cp', ['-a', deployed.dir, dir]);
    await writeFile(join(dir, '.env'), envText.split(first.id).join(id), { mode: 0o600 });
    await writeFile(join(dir, 'settings.json'), settingsText.split(first.id).join(id), { mode: 0o600 });
  });
  // Laid out by hand as the guide does: agent folders in a folder, no `animus init` state.
  if (options.byHand) await rm(join(home, '.animus'), { recursive: true, force: true });
  return { root, home, ids, cleanup: () => rm(root, { recursive: true, force: true }) };
}

/** The environment that points the CLI at a fleet: its home, and its own preferences and PM2_HOME. */
export function fleetEnv(fleet: { root: string; home: string }): NodeJS.ProcessEnv {
  return { ...process.env, ANIMUS_HOME: fleet.home, PM2_HOME: join(fleet.root, 'pm2'), ANIMUS_CONFIG_DIR: join(fleet.root, 'config'), XDG_CACHE_HOME: join(fleet.root, 'cache'), NO_COLOR: '1' };
}
