import type { Database, Statement } from 'better-sqlite3';
import { preparedFor } from './statements.js';
import { isoTime } from '../core/time.js';

/**
 * Storing one inbound chat message: profile get-or-create, `messages` row and
 * `queue` row `pending`, all in one transaction, so a crash never leaves a message
 * without its queue item (or the reverse). Used by every runtime plugin and by
 * `animus send`.
 */

/** Platform names as stored in platform_profiles.platform (`telegram` is Broca's name for the bot). */
export const PLATFORMS = { telegramBot: 'telegram', telegramUser: 'telegram_user', local: 'local' } as const;

export interface InboundMessage {
  platform: string;
  platformUserId: string;
  username?: string | null;
  displayName?: string | null;
  /** Where the reply goes; defaults to the sender (a private chat's id is the user's id). */
  chatId?: string | null;
  /** The platform's id for the message: a message seen twice (Telegram redelivery, MTProto catch-up) is stored once. */
  platformMessageId?: string | null;
  text: string;
  /** ISO time the message was sent; default now. */
  timestamp?: string;
  /**
   * Answered by the runtime itself (a voice message to a bot that reads text): stored
   * as answered with this reply pending delivery, and never queued for the agent.
   */
  autoReply?: string;
}

export type InboundResult =
  | { status: 'queued'; queueId: number; messageId: number; lettaUserId: number; profileId: number }
  | { status: 'duplicate'; messageId: number }
  /** Stored with its `autoReply` waiting for delivery; the agent is not asked. */
  | { status: 'answered'; messageId: number }
  /** The sender's letta user is marked inactive (`animus users update … inactive`). */
  | { status: 'ignored'; reason: 'inactive_user'; lettaUserId: number };

/** How far back duplicates are looked for: redeliveries only ever concern recent messages, and the id range keeps the lookup on the primary key. */
const DUPLICATE_WINDOW = 5000;

interface Statements {
  findProfile: Statement;
  addUser: Statement;
  addProfile: Statement;
  touchProfile: Statement;
  touchUser: Statement;
  userActive: Statement;
  findDuplicate: Statement;
  addMessage: Statement;
  addQueue: Statement;
  answer: Statement;
}

const statements = preparedFor(
  (db): Statements => ({
    findProfile: db.prepare('SELECT id, letta_user_id FROM platform_profiles WHERE platform = ? AND platform_user_id = ?'),
    addUser: db.prepare('INSERT INTO letta_users (last_active, is_active) VALUES (?, 1)'),
    addProfile: db.prepare(
      'INSERT INTO platform_profiles (letta_user_id, platform, platform_user_id, username, display_name, last_active) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    touchProfile: db.prepare(
      'UPDATE platform_profiles SET username = COALESCE(?, username), display_name = COALESCE(?, display_name), last_active = ?, letta_user_id = COALESCE(letta_user_id, ?) WHERE id = ?',
    ),
    touchUser: db.prepare('UPDATE letta_users SET last_active = ? WHERE id = ?'),
    userActive: db.prepare('SELECT is_active FROM letta_users WHERE id = ?'),
    findDuplicate: db.prepare(
      'SELECT m.id FROM messages m WHERE m.id > (SELECT COALESCE(MAX(id), 0) FROM messages) - ? AND m.platform_profile_id = ? AND m.platform_message_id = ? AND COALESCE(m.platform_chat_id, \'\') = ? LIMIT 1',
    ),
    addMessage: db.prepare(
      "INSERT INTO messages (letta_user_id, platform_profile_id, role, message, timestamp, processed, platform_chat_id, platform_message_id) VALUES (?, ?, 'user', ?, ?, 0, ?, ?)",
    ),
    answer: db.prepare("UPDATE messages SET processed = 1, agent_response = ?, delivery_status = 'pending', delivery_attempts = 0, delivery_due_at = 0 WHERE id = ?"),
    addQueue: db.prepare("INSERT INTO queue (letta_user_id, message_id, status, attempts, timestamp, available_at, updated_at) VALUES (?, ?, 'pending', 0, ?, 0, ?)"),
  }),
);

/** SQLite's CURRENT_TIMESTAMP format, which Broca's defaults write: sorting and Broca's CLI keep working. */
export function sqlTimestamp(date: Date = new Date()): string {
  return isoTime(date).replace('T', ' ').slice(0, 19);
}

export function storeInbound(db: Database, message: InboundMessage): InboundResult {
  const s = statements(db);
  const now = sqlTimestamp();
  const chatId = message.chatId ?? message.platformUserId;
  return db.transaction((): InboundResult => {
    let profile = s.findProfile.get(message.platform, message.platformUserId) as { id: number; letta_user_id: number | null } | undefined;
    let lettaUserId: number;
    if (!profile) {
      lettaUserId = Number(s.addUser.run(now).lastInsertRowid);
      const id = Number(s.addProfile.run(lettaUserId, message.platform, message.platformUserId, message.username ?? null, message.displayName ?? null, now).lastInsertRowid);
      profile = { id, letta_user_id: lettaUserId };
    } else {
      // A Broca profile may lack its user row; give it one rather than queue an orphan.
      lettaUserId = profile.letta_user_id ?? Number(s.addUser.run(now).lastInsertRowid);
      s.touchProfile.run(message.username ?? null, message.displayName ?? null, now, lettaUserId, profile.id);
      const user = s.userActive.get(lettaUserId) as { is_active: number | null } | undefined;
      if (user && user.is_active === 0) return { status: 'ignored', reason: 'inactive_user', lettaUserId };
    }
    if (message.platformMessageId) {
      const dup = s.findDuplicate.get(DUPLICATE_WINDOW, profile.id, message.platformMessageId, chatId) as { id: number } | undefined;
      if (dup) return { status: 'duplicate', messageId: dup.id };
    }
    s.touchUser.run(now, lettaUserId);
    const sentAt = message.timestamp ?? isoTime();
    const messageId = Number(s.addMessage.run(lettaUserId, profile.id, message.text, sentAt, chatId, message.platformMessageId ?? null).lastInsertRowid);
    if (message.autoReply !== undefined) {
      s.answer.run(message.autoReply, messageId);
      return { status: 'answered', messageId };
    }
    const queueId = Number(s.addQueue.run(lettaUserId, messageId, now, now).lastInsertRowid);
    return { status: 'queued', queueId, messageId, lettaUserId, profileId: profile.id };
  }).immediate();
}
