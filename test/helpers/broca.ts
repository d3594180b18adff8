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
