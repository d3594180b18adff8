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
    //   kind:       message (the user's message) | approval (the answer to an approval request)
    //   outcome:    sending (written before the POST; no run id yet) | running (run id known) |
    //               replied | no_reply (ended normally without assistant text) |
    //               approval (ended with requires_approval, answered by a later row) |
    //               awaiting_approval (held for an operator: `animus approvals`) |
    //               retry (failed; the item is retried later) | failed (the item failed) |
    //               abandoned (never reached Letta, or the item was removed meanwhile)
    //   error_kind: timeout | connection | http_4xx | http_5xx | rate_limited (429) |
    //               stop_reason (the run ended with a failing stop reason) |
    //               approval (an approval could not be answered) | user_block (identity/block calls)
    //   approval:   JSON {toolCalls:[{name, arguments, tool_call_id}], requestId, orphan?,
    //               decision?: {approve, reason, at}} of the request this row answers or holds
    //   block_id / block_detached_at: the user's block attached for this request, and when it was
    //               detached again (NULL while it may still be attached: detached before the next request)
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
        approval TEXT,
        kind TEXT,
        block_id TEXT,
        block_detached_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS idx_agent_requests_queue ON agent_requests(queue_id);
      CREATE INDEX IF NOT EXISTS idx_agent_requests_started ON agent_requests(started_at);
      CREATE INDEX IF NOT EXISTS idx_agent_requests_open ON agent_requests(outcome) WHERE outcome IN ('sending', 'running', 'awaiting_approval');
      CREATE INDEX IF NOT EXISTS idx_agent_requests_block ON agent_requests(block_detached_at) WHERE block_id IS NOT NULL AND block_detached_at IS NULL;
      ALTER TABLE messages ADD COLUMN stop_reason TEXT;
    `,
  },
  {
    version: 4,
    description: 'queue index in claim order',
    // The claim takes the oldest due pending item. idx_queue_status_due orders pending items by
    // due time, so every claim sorted the whole backlog (1000 queued messages: a sort of up to
    // 1000 rows per message); in id order with the due time beside it, a claim reads from the
    // oldest until the first due one. idx_queue_status_due still answers "when is the next due".
    sql: `
      CREATE INDEX IF NOT EXISTS idx_queue_claim ON queue(status, id, available_at);
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
 *
 * Two processes may open an old file at once (the runtime starting after an update while
 * `animus queue retry` writes to it): each step holds the write lock from its start and reads the
 * version again under it, so a step the other process applied meanwhile is skipped
 * rather than run twice ("duplicate column name").
 */
export function migrate(db: Database): MigrationResult {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) return { from, to: from, applied: [] };
  const applied: string[] = [];
  db.exec(BROCA_SCHEMA);
  for (const step of MIGRATIONS) {
    if (step.version <= from) continue;
    const ran = db
      .transaction(() => {
        if (schemaVersion(db) >= step.version) return false;
        db.exec(step.sql);
        db.pragma(`user_version = ${step.version}`);
        return true;
      })
      .immediate();
    if (ran) applied.push(`${step.version}: ${step.description}`);
  }
  return { from, to: schemaVersion(db), applied };
}
