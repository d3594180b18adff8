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

export const QUEUE_STATUSES = ['pending', 'processing', 'completed', 'failed', 'flushed'] as const;
export type QueueStatus = (typeof QUEUE_STATUSES)[number];

/** Reply delivery to the platform is its own step, tracked on the message row. */
export const DELIVERY_STATUSES = ['pending', 'sent', 'failed', 'skipped'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Columns of Broca's tables plus animus's additive columns (null on a Broca-made database). */
export interface QueueRow {
  id: number;
  letta_user_id: number | null;
  message_id: number | null;
  status: QueueStatus;
  attempts: number;
  timestamp: string;
  /** ms since epoch before which the item is not tried again (retry backoff). */
  available_at: number | null;
  claimed_at: number | null;
  last_error: string | null;
  updated_at: string | null;
}

export interface MessageRow {
  id: number;
  letta_user_id: number | null;
  platform_profile_id: number | null;
  role: string | null;
  message: string | null;
  timestamp: string | null;
  processed: number;
  agent_response: string | null;
  platform_chat_id: string | null;
  platform_message_id: string | null;
  latency_ms: number | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  total_tokens: number | null;
  delivery_status: DeliveryStatus | null;
  delivery_attempts: number;
  delivery_due_at: number | null;
  delivery_error: string | null;
  delivered_at: string | null;
}

export interface LettaUserRow {
  id: number;
  created_at: string | null;
  last_active: string | null;
  letta_identity_id: string | null;
  letta_block_id: string | null;
  agent_preferences: string | null;
  custom_instructions: string | null;
  is_active: number;
}

export interface PlatformProfileRow {
  id: number;
  letta_user_id: number | null;
  platform: string;
  platform_user_id: string;
  username: string | null;
  display_name: string | null;
  metadata: string | null;
  created_at: string | null;
  last_active: string | null;
}
