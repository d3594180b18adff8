import type { Database } from 'better-sqlite3';
import { BROCA_SCHEMA } from './schema.js';

/**
 * Versioned, additive migrations keyed by `PRAGMA user_version`. Version 0 is a
 * database as Broca makes it. Each step only adds tables, columns (with defaults) and
 * indexes, so Broca can still open and use a migrated file. Never edit a released
 * step; append a new one.
 */
interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'retry schedule, reply delivery, usage metrics and queue indexes',
    sql: `
      ALTER TABLE queue ADD COLUMN available_at INTEGER DEFAULT 0;
      ALTER TABLE queue ADD COLUMN claimed_at INTEGER;
      ALTER TABLE queue ADD COLUMN last_error TEXT;
      ALTER TABLE queue ADD COLUMN updated_at TEXT;
      ALTER TABLE messages ADD COLUMN platform_chat_id TEXT;
      ALTER TABLE messages ADD COLUMN platform_message_id TEXT;
      ALTER TABLE messages ADD COLUMN latency_ms INTEGER;
      ALTER TABLE messages ADD COLUMN prompt_tokens INTEGER;
      ALTER TABLE messages ADD COLUMN completion_tokens INTEGER;
      ALTER TABLE messages ADD COLUMN total_tokens INTEGER;
      ALTER TABLE messages ADD COLUMN delivery_status TEXT;
      ALTER TABLE messages ADD COLUMN delivery_attempts INTEGER DEFAULT 0;
      ALTER TABLE messages ADD COLUMN delivery_due_at INTEGER;
      ALTER TABLE messages ADD COLUMN delivery_error TEXT;
      ALTER TABLE messages ADD COLUMN delivered_at TEXT;
      CREATE INDEX IF NOT EXISTS idx_queue_status_due ON queue(status, available_at, id);
      CREATE INDEX IF NOT EXISTS idx_queue_message ON queue(message_id);
      CREATE INDEX IF NOT EXISTS idx_messages_delivery ON messages(delivery_status, delivery_due_at);
      CREATE INDEX IF NOT EXISTS idx_messages_user ON messages(letta_user_id);
      CREATE INDEX IF NOT EXISTS idx_profiles_user ON platform_profiles(letta_user_id);
    `,
  },
  {
    version: 2,
    description: 'parts of a split reply already delivered',
    sql: `
      ALTER TABLE messages ADD COLUMN delivery_parts INTEGER DEFAULT 0;
    `,
  },
  {
    version: 3,
    description: 'one row per agent request: its Letta run, stop reason and outcome',
    // One row per attempt, written before the request is sent and completed when it
    // ends: the run id recorded here is what a restarted runtime resumes instead of
    // sending the message again, and what metrics count failures by kind from.
    sql: `
      CREATE TABLE IF NOT EXISTS agent_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        queue_id INTEGER REFERENCES queue(id),
        message_id INTEGER REFERENCES messages(id),
        attempt INTEGER,
        otid TEXT,
        run_id TEXT,
        started_at INTEGER,
        finished_at INTEGER,
        outcome TEXT,
        stop_reason TEXT,
        http_status INTEGER,
        error_kind TEXT,
        error TEXT,
        latency_ms INTEGER,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        approval TEXT
      );
      CREATE INDEX IF NOT EXISTS idx_agent_requests_queue ON agent_requests(queue_id);
      CREATE INDEX IF NOT EXISTS idx_agent_requests_started ON agent_requests(started_at);
      CREATE INDEX IF NOT EXISTS idx_agent_requests_open ON agent_requests(outcome) WHERE outcome IN ('sending', 'running', 'awaiting_approval');
      ALTER TABLE messages ADD COLUMN stop_reason TEXT;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function schemaVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export interface MigrationResult {
  from: number;
  to: number;
  applied: string[];
}

/**
 * Creates Broca's tables if absent, then applies each pending step in its own
 * transaction, so a crash leaves the file at a whole version. A file a later animus
 * migrated further is used as it is: every step only adds, so this code's statements
 * still hold, and an agent rolled back to an older runtime keeps working on it.
 */
export function migrate(db: Database): MigrationResult {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) return { from, to: from, applied: [] };
  const applied: string[] = [];
  db.exec(BROCA_SCHEMA);
  for (const step of MIGRATIONS) {
    if (step.version <= from) continue;
    db.transaction(() => {
      db.exec(step.sql);
      db.pragma(`user_version = ${step.version}`);
    })();
    applied.push(`${step.version}: ${step.description}`);
  }
  return { from, to: schemaVersion(db), applied };
}
