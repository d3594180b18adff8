import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { agentIdFromUuid } from '../src/core/agent-id.js';
import { runPool } from '../src/core/pool.js';
import { deployAgent } from '../src/instances/deploy.js';
import { REPO_ROOT } from './lib.js';

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

/**
 * Registers every agent of a fleet with a PM2 daemon of the fleet's own (PM2_HOME in
 * fleetEnv) as a running process named as animus names it (`animus-<uuid>`, working
 * directory the agent folder), so `animus health` finds a healthy fleet. The process
 * is a stand-in, `sleep infinity` (about 1 MiB each): a thousand real runtimes would
 * need some 50 GiB. PM2's own cost (its list of a thousand processes) is real.
 * Returns what stops the daemon and its processes.
 */
export async function registerStandIns(fleet: { root: string; home: string; ids: string[] }): Promise<() => void> {
  const env = fleetEnv(fleet);
  const pm2 = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
  // Registered as animus registers an agent (src/process/pm2.ts): the same name and folder, and
  // no copy of the caller's environment, so PM2's list of them is as large as a real fleet's.
  const apps = fleet.ids.map((id) => {
    const cwd = join(fleet.home, id);
    const appEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/', LANG: 'C.UTF-8', ANIMUS_AGENT_DIR: cwd, NODE_ENV: 'production' };
    return { name: `animus-${id.slice('agent-'.length)}`, script: 'sleep', args: 'infinity', interpreter: 'none', cwd, filter_env: [''], env: appEnv, vizion: false, autorestart: false, out_file: '/dev/null', error_file: '/dev/null' };
  });
  const file = join(fleet.root, 'stand-ins.json');
  await writeFile(file, JSON.stringify({ apps }));
  const started = spawnSync(process.execPath, [pm2, 'start', file], { env, encoding: 'utf8' });
  const stop = () => {
    spawnSync(process.execPath, [pm2, 'kill'], { env, stdio: 'ignore' });
    try {
      process.kill(Number(readFileSync(join(env.PM2_HOME!, 'pm2.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // Gone already.
    }
  };
  if (started.status !== 0) {
    stop();
    throw new Error(`pm2 start of the stand-ins failed (${started.status}): ${started.stderr.slice(-500)}`);
  }
  return stop;
}
