/**
 * Broca's four tables, exactly as Broca creates them, so a database made by either
 * program opens in the other. Everything animus adds comes through migrations.ts.
 */
export const BROCA_SCHEMA = `
CREATE TABLE IF NOT EXISTS letta_users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  created_at TEXT DEFAULT CURRENT_TIMESTAMP,
  last_active TEXT,
  letta_identity_id TEXT,
  letta_block_id TEXT,
  agent_preferences TEXT,
  custom_instructions TEXT,
  is_active INTEGER DEFAULT 1
);
CREATE TABLE IF NOT EXISTS platform_profiles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  letta_user_id INTEGER REFERENCES letta_users(id),
  platform TEXT,
  platform_user_id TEXT,
  username TEXT,
  display_name TEXT,
  metadata TEXT,
  created_at TEXT DEFAULT CURRENT_TIMESTAMP,
  last_active TEXT,
  UNIQUE(platform, platform_user_id)
);
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  letta_user_id INTEGER REFERENCES letta_users(id),
  platform_profile_id INTEGER REFERENCES platform_profiles(id),
  role TEXT,
  message TEXT,
  timestamp TEXT,
  processed INTEGER DEFAULT 0,
  agent_response TEXT
);
CREATE TABLE IF NOT EXISTS queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  letta_user_id INTEGER REFERENCES letta_users(id),
  message_id INTEGER REFERENCES messages(id),
  status TEXT,
  attempts INTEGER DEFAULT 0,
  timestamp TEXT DEFAULT CURRENT_TIMESTAMP
);
`;

/** The tables of BROCA_SCHEMA: a file without them is no agent database. */
export const BROCA_TABLES = ['letta_users', 'platform_profiles', 'messages', 'queue'] as const;

export const QUEUE_STATUSES = ['pending', 'processing', 'completed', 'failed', 'flushed'] as const;
export type QueueStatus = (typeof QUEUE_STATUSES)[number];
