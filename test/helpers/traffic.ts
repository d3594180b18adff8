import Database from 'better-sqlite3';

/** One message of made-up traffic: when it came in (ms ago), and what the runtime recorded for it. */
export interface TrafficRow {
  agoMs: number;
  /** Reply latency; no reply when undefined. */
  latencyMs?: number;
  tokens?: { prompt: number; completion: number };
  delivery?: 'sent' | 'failed' | 'pending';
  /** Queue status of its item (default: completed when replied, else pending). */
  status?: 'pending' | 'processing' | 'completed' | 'failed';
  attempts?: number;
  /** agent_requests rows for it, oldest first. */
  requests?: Array<{ outcome: string; errorKind?: string; stopReason?: string; httpStatus?: number; latencyMs?: number }>;
  /** Written as ISO text (as Telegram dates are) instead of SQLite's CURRENT_TIMESTAMP form. */
  iso?: boolean;
}

function sqlTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

/**
 * Writes rows into an agent database migrated by animus (schema 3 or later) as the runtime
 * does: the message with its reply, latency and tokens, its queue item, and one
 * agent_requests row per attempt. Times are relative to `now`.
 */
export function writeTraffic(path: string, rows: TrafficRow[], now: number = Date.now()): void {
  const db = new Database(path);
  try {
    const user = Number(db.prepare("INSERT INTO letta_users (last_active) VALUES (datetime('now'))").run().lastInsertRowid);
    const profile = Number(
      db.prepare("INSERT INTO platform_profiles (letta_user_id, platform, platform_user_id, username, display_name) VALUES (?, 'telegram', ?, 'ada', 'Ada')").run(user, String(40000 + user)).lastInsertRowid,
    );
    const message = db.prepare(
      `INSERT INTO messages (letta_user_id, platform_profile_id, role, message, timestamp, processed, agent_response, latency_ms, prompt_tokens, completion_tokens, total_tokens, delivery_status, delivered_at)
       VALUES (?, ?, 'user', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const queue = db.prepare('INSERT INTO queue (letta_user_id, message_id, status, attempts, timestamp, available_at) VALUES (?, ?, ?, ?, ?, 0)');
    const request = db.prepare(
      `INSERT INTO agent_requests (queue_id, message_id, attempt, otid, started_at, finished_at, outcome, stop_reason, http_status, error_kind, latency_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    db.transaction(() => {
      rows.forEach((row, i) => {
        const at = now - row.agoMs;
        const replied = row.latencyMs !== undefined;
        const stamp = row.iso ? new Date(at).toISOString() : sqlTime(at);
        const delivery = replied ? (row.delivery ?? 'sent') : null;
        const id = Number(
          message.run(
            user, profile, `message ${i}`, stamp, replied ? 1 : 0, replied ? `reply ${i}` : null, row.latencyMs ?? null,
            row.tokens?.prompt ?? null, row.tokens?.completion ?? null, row.tokens ? row.tokens.prompt + row.tokens.completion : null,
            delivery, delivery === 'sent' ? sqlTime(at + (row.latencyMs ?? 0)) : null,
          ).lastInsertRowid,
        );
        const status = row.status ?? (replied ? 'completed' : 'pending');
        const queueId = Number(queue.run(user, id, status, row.attempts ?? (row.requests?.length ?? (replied ? 1 : 0)), stamp).lastInsertRowid);
        row.requests?.forEach((r, attempt) => {
          request.run(queueId, id, attempt + 1, `otid-${id}-${attempt}`, at + attempt, at + attempt + (r.latencyMs ?? 10), r.outcome, r.stopReason ?? null, r.httpStatus ?? null, r.errorKind ?? null, r.latencyMs ?? null);
        });
      });
    })();
  } finally {
    db.close();
  }
}
