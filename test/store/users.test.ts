import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { tempDir } from '../helpers/temp.js';
import { openQueueDatabase } from '../../src/store/queue-admin.js';
import { getUser, listUsers, resolveUser, setUserActive } from '../../src/store/users.js';

const AGENT = 'agent-00000000-0000-4000-8000-000000000001';

async function brocaDb(): Promise<string> {
  const path = join(await tempDir('users'), 'animus.db');
  makeBrocaDatabase(path);
  return path;
}

describe('users', () => {
  it('lists users with status, first profile and counts', async () => {
    const { db } = openQueueDatabase(await brocaDb(), 'read');
    const { users } = listUsers(db, AGENT);
    db.close();
    expect(users).toEqual([
      expect.objectContaining({ id: 1, isActive: true, username: 'user1', displayName: 'User 1', platform: 'telegram', platformUserId: '1001', profiles: 1, messages: 6 }),
      expect.objectContaining({ id: 2, isActive: false, username: 'user2', messages: 6 }),
    ]);
  });

  it('finds a user by id, @username (any case) or platform:id, and refuses the rest', async () => {
    const { db } = openQueueDatabase(await brocaDb(), 'read');
    expect(resolveUser(db, '2')).toBe(2);
    expect(resolveUser(db, '@USER1')).toBe(1);
    expect(resolveUser(db, 'telegram:1002')).toBe(2);
    expect(() => resolveUser(db, '9')).toThrow(expect.objectContaining({ code: 'ENOTFOUND' }));
    expect(() => resolveUser(db, '@nobody')).toThrow(expect.objectContaining({ code: 'ENOTFOUND' }));
    expect(() => resolveUser(db, 'user1')).toThrow(expect.objectContaining({ code: 'EUSAGE' }));
    db.close();
  });

  it('gets one user in full, with the status Broca left out', async () => {
    const { db } = openQueueDatabase(await brocaDb(), 'read');
    const user = getUser(db, AGENT, '@user2');
    db.close();
    expect(user).toMatchObject({
      agent: AGENT,
      id: 2,
      isActive: false,
      profiles: [expect.objectContaining({ platform: 'telegram', platformUserId: '1002', username: 'user2' })],
      messages: 6,
      queue: { pending: 2, processing: 1, completed: 1, failed: 1, flushed: 1 },
    });
  });

  it('activates and deactivates, reporting whether anything changed', async () => {
    const path = await brocaDb();
    const { db } = openQueueDatabase(path, 'write');
    expect(setUserActive(db, '2', true)).toEqual({ id: 2, isActive: true, changed: true });
    expect(setUserActive(db, '2', true)).toEqual({ id: 2, isActive: true, changed: false });
    expect(setUserActive(db, '@user1', false)).toEqual({ id: 1, isActive: false, changed: true });
    expect(() => setUserActive(db, '42', false)).toThrow(expect.objectContaining({ code: 'ENOTFOUND' }));
    db.close();
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT id, is_active FROM letta_users ORDER BY id').all()).toEqual([
      { id: 1, is_active: 0 },
      { id: 2, is_active: 1 },
    ]);
    raw.close();
  });
});
