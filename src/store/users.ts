import type { Database } from 'better-sqlite3';
import { AnimusError } from '../core/errors.js';
import type { QueueStatus } from './schema.js';

/**
 * The people an agent talks to (`animus users …`): Broca's letta_users with their
 * platform profiles. Broca's utool `get` dropped the status and its `update`
 * reported success for a user that did not exist; here every answer carries the
 * status and an unknown user is an error.
 *
 * JSON shapes (stable; `animus users … --json`):
 *   list:                { agent, users: UserSummary[] }
 *   get:                 UserDetail
 *   activate|deactivate: { agent, id, isActive, changed, migrated: {from,to}|null }
 *   UserSummary: { id, isActive, username, displayName, platform, platformUserId,
 *                  profiles (count), messages (count), createdAt, lastActive }
 *   UserDetail:  UserSummary minus the counts, plus { agent, lettaIdentityId, lettaBlockId,
 *                  agentPreferences, customInstructions, profiles: Profile[],
 *                  messages: n, queue: { pending, processing, completed, failed, flushed } }
 *   Profile:     { id, platform, platformUserId, username, displayName, createdAt, lastActive }
 */

export interface UserSummary {
  id: number;
  isActive: boolean;
  /** From the user's first platform profile. */
  username: string | null;
  displayName: string | null;
  platform: string | null;
  platformUserId: string | null;
  profiles: number;
  messages: number;
  createdAt: string | null;
  lastActive: string | null;
}

export interface Profile {
  id: number;
  platform: string | null;
  platformUserId: string | null;
  username: string | null;
  displayName: string | null;
  createdAt: string | null;
  lastActive: string | null;
}

/** A summary's fields with every profile instead of their count, Letta's ids and the user's queue. */
export interface UserDetail extends Omit<UserSummary, 'profiles'> {
  agent: string;
  lettaIdentityId: string | null;
  lettaBlockId: string | null;
  agentPreferences: string | null;
  customInstructions: string | null;
  profiles: Profile[];
  queue: Record<QueueStatus, number>;
}

export function listUsers(db: Database, agent: string): { agent: string; users: UserSummary[] } {
  const rows = db
    .prepare(
      `SELECT u.id, u.is_active, u.created_at, u.last_active,
              p.username, p.display_name, p.platform, p.platform_user_id,
              (SELECT COUNT(*) FROM platform_profiles WHERE letta_user_id = u.id) AS profiles,
              (SELECT COUNT(*) FROM messages WHERE letta_user_id = u.id) AS messages
         FROM letta_users u
         LEFT JOIN platform_profiles p ON p.id = (SELECT id FROM platform_profiles WHERE letta_user_id = u.id ORDER BY id LIMIT 1)
        ORDER BY u.id`,
    )
    .all() as Array<Record<string, unknown>>;
  return {
    agent,
    users: rows.map((row) => ({
      id: row.id as number,
      isActive: isActive(row.is_active),
      username: (row.username as string | null) ?? null,
      displayName: (row.display_name as string | null) ?? null,
      platform: (row.platform as string | null) ?? null,
      platformUserId: text(row.platform_user_id),
      profiles: row.profiles as number,
      messages: row.messages as number,
      createdAt: (row.created_at as string | null) ?? null,
      lastActive: (row.last_active as string | null) ?? null,
    })),
  };
}

/**
 * A user by letta_users id (`7`), by a profile's username (`@alice`) or by a
 * platform id (`telegram:12345`): operators know people by the latter two.
 */
export function resolveUser(db: Database, ref: string): number {
  const input = ref.trim();
  let rows: Array<{ id: number }>;
  if (/^\d+$/.test(input)) {
    rows = db.prepare('SELECT id FROM letta_users WHERE id = ?').all(Number(input)) as typeof rows;
  } else if (input.startsWith('@') && input.length > 1) {
    rows = db.prepare('SELECT DISTINCT letta_user_id AS id FROM platform_profiles WHERE lower(username) = lower(?) AND letta_user_id IS NOT NULL').all(input.slice(1)) as typeof rows;
  } else if (/^[a-z_]+:.+$/i.test(input)) {
    const [platform, id] = [input.slice(0, input.indexOf(':')), input.slice(input.indexOf(':') + 1)];
    rows = db.prepare('SELECT DISTINCT letta_user_id AS id FROM platform_profiles WHERE platform = ? AND CAST(platform_user_id AS TEXT) = ? AND letta_user_id IS NOT NULL').all(platform, id) as typeof rows;
  } else {
    throw new AnimusError('EUSAGE', `"${input}" is not a user: pass a user id (7), a username (@alice) or a platform id (telegram:12345)`);
  }
  if (rows.length === 0) throw new AnimusError('ENOTFOUND', `no user ${input}: run \`animus users list --agent <id>\` to see them`);
  if (rows.length > 1) throw new AnimusError('EUSAGE', `${input} matches users ${rows.map((r) => r.id).join(', ')}: pass the user id instead`);
  return rows[0]!.id;
}

export function getUser(db: Database, agent: string, ref: string): UserDetail {
  const id = resolveUser(db, ref);
  const user = db.prepare('SELECT * FROM letta_users WHERE id = ?').get(id) as Record<string, unknown>;
  const profiles = (
    db.prepare('SELECT id, platform, platform_user_id, username, display_name, created_at, last_active FROM platform_profiles WHERE letta_user_id = ? ORDER BY id').all(id) as Array<
      Record<string, unknown>
    >
  ).map(
    (row): Profile => ({
      id: row.id as number,
      platform: (row.platform as string | null) ?? null,
      platformUserId: text(row.platform_user_id),
      username: (row.username as string | null) ?? null,
      displayName: (row.display_name as string | null) ?? null,
      createdAt: (row.created_at as string | null) ?? null,
      lastActive: (row.last_active as string | null) ?? null,
    }),
  );
  const queue = { pending: 0, processing: 0, completed: 0, failed: 0, flushed: 0 };
  for (const row of db.prepare('SELECT status, COUNT(*) AS n FROM queue WHERE letta_user_id = ? GROUP BY status').all(id) as Array<{ status: string; n: number }>) {
    if (row.status in queue) queue[row.status as keyof typeof queue] = row.n;
  }
  const first = profiles[0];
  return {
    agent,
    id,
    isActive: isActive(user.is_active),
    username: first?.username ?? null,
    displayName: first?.displayName ?? null,
    platform: first?.platform ?? null,
    platformUserId: first?.platformUserId ?? null,
    createdAt: (user.created_at as string | null) ?? null,
    lastActive: (user.last_active as string | null) ?? null,
    lettaIdentityId: (user.letta_identity_id as string | null) ?? null,
    lettaBlockId: (user.letta_block_id as string | null) ?? null,
    agentPreferences: (user.agent_preferences as string | null) ?? null,
    customInstructions: (user.custom_instructions as string | null) ?? null,
    profiles,
    messages: (db.prepare('SELECT COUNT(*) AS n FROM messages WHERE letta_user_id = ?').get(id) as { n: number }).n,
    queue,
  };
}

/** Broca's `update <id> active|inactive`. The runtime ignores messages from inactive users. */
export function setUserActive(db: Database, ref: string, active: boolean): { id: number; isActive: boolean; changed: boolean } {
  return db.transaction(() => {
    const id = resolveUser(db, ref);
    const before = isActive((db.prepare('SELECT is_active FROM letta_users WHERE id = ?').get(id) as { is_active: unknown }).is_active);
    if (before !== active) db.prepare('UPDATE letta_users SET is_active = ? WHERE id = ?').run(active ? 1 : 0, id);
    return { id, isActive: active, changed: before !== active };
  }).immediate();
}

// Broca's column defaults to 1; a NULL written by hand counts as active, as in Broca.
function isActive(value: unknown): boolean {
  return value === null || value === undefined || Number(value) !== 0;
}

function text(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
