import Database from 'better-sqlite3';

/**
 * A database exactly as Python Broca makes it: its DDL, foreign keys on, no WAL, no
 * indexes, no user_version, and a few rows of each kind.
 */
export function makeBrocaDatabase(path: string): { users: number; messages: number; queue: number } {
  const db = new Database(path);
  db.pragma('foreign_keys = ON');
  db.exec(`
    CREATE TABLE IF NOT EXISTS letta_users (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT DEFAULT CURRENT_TIMESTAMP, last_active TEXT, letta_identity_id TEXT, letta_block_id TEXT, agent_preferences TEXT, custom_instructions TEXT, is_active INTEGER DEFAULT 1);
    CREATE TABLE IF NOT EXISTS platform_profiles (id INTEGER PRIMARY KEY AUTOINCREMENT, letta_user_id INTEGER REFERENCES letta_users(id), platform TEXT, platform_user_id TEXT, username TEXT, display_name TEXT, metadata TEXT, created_at TEXT DEFAULT CURRENT_TIMESTAMP, last_active TEXT, UNIQUE(platform, platform_user_id));
    CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY AUTOINCREMENT, letta_user_id INTEGER REFERENCES letta_users(id), platform_profile_id INTEGER REFERENCES platform_profiles(id), role TEXT, message TEXT, timestamp TEXT, processed INTEGER DEFAULT 0, agent_response TEXT);
    CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, letta_user_id INTEGER REFERENCES letta_users(id), message_id INTEGER REFERENCES messages(id), status TEXT, attempts INTEGER DEFAULT 0, timestamp TEXT DEFAULT CURRENT_TIMESTAMP);
  `);
  const addUser = db.prepare("INSERT INTO letta_users (last_active, is_active) VALUES (datetime('now'), ?)");
  const addProfile = db.prepare("INSERT INTO platform_profiles (letta_user_id, platform, platform_user_id, username, display_name) VALUES (?, 'telegram', ?, ?, ?)");
  const addMessage = db.prepare("INSERT INTO messages (letta_user_id, platform_profile_id, role, message, timestamp, processed, agent_response) VALUES (?, ?, 'user', ?, datetime('now'), ?, ?)");
  const addQueue = db.prepare('INSERT INTO queue (letta_user_id, message_id, status, attempts) VALUES (?, ?, ?, ?)');
  const statuses = ['pending', 'pending', 'processing', 'failed', 'completed', 'flushed'];
  db.transaction(() => {
    for (let u = 1; u <= 2; u++) {
      const user = Number(addUser.run(u === 1 ? 1 : 0).lastInsertRowid);
      const profile = Number(addProfile.run(user, String(1000 + u), `user${u}`, `User ${u}`).lastInsertRowid);
      statuses.forEach((status, i) => {
        const done = status === 'completed';
        const message = Number(addMessage.run(user, profile, `hello ${u}.${i}`, done ? 1 : 0, done ? `reply ${u}.${i}` : null).lastInsertRowid);
        addQueue.run(user, message, status, status === 'failed' ? 5 : 0);
      });
    }
  })();
  db.close();
  return { users: 2, messages: statuses.length * 2, queue: statuses.length * 2 };
}

export interface BrocaFolderOptions {
  /** The folder's .env, as Broca 3 reads it (its own names). */
  env: Record<string, string>;
  /** settings.json as Broca writes it (flat) or as the guide shows it (nested). */
  settings: Record<string, unknown>;
  /** Plugin folders under broca/plugins/ (Broca 3 ships telegram_bot; the Telethon one sits in plugins-disabled/). */
  plugins?: string[];
}

/**
 * An agent folder as a Broca 3 operator has it: a `broca/` clone whose `plugins/`
 * folders decide what runs (no `enabled` switch), `sanctum.db` beside its code, an
 * .env with Broca's names (mode 0644, as `cp .env.example .env` leaves it).
 */
export async function makeBrocaFolder(dir: string, scratch: string, options: BrocaFolderOptions): Promise<void> {
  const { mkdir, writeFile, chmod } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { git, makeBareRepo } = await import('./git.js');
  const plugins = options.plugins ?? ['telegram_bot'];
  const files: Record<string, string> = { 'main.py': 'print("broca")\n', 'plugins/__init__.py': '', 'plugins-disabled/telegram/__init__.py': '' };
  for (const name of plugins) files[`plugins/${name}/__init__.py`] = '';
  const bare = join(scratch, `broca-${Math.random().toString(36).slice(2)}.git`);
  await makeBareRepo(bare, files);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await git(['clone', '--quiet', bare, join(dir, 'broca')], scratch);
  const env = `${Object.entries(options.env).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
  await writeFile(join(dir, '.env'), env, { mode: 0o644 });
  await chmod(join(dir, '.env'), 0o644);
  await writeFile(join(dir, 'settings.json'), JSON.stringify(options.settings, null, 4));
  makeBrocaDatabase(join(dir, 'broca', 'sanctum.db'));
}
