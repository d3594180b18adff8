import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupAgent } from '../../src/backup/create-backup.js';
import { restoreAgent } from '../../src/backup/restore-backup.js';
import { verifyArchive } from '../../src/backup/verify-backup.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';
import { FAST_ENV, startRuntime, updateSettings } from '../runtime/harness.js';

const MESSAGES = 400;

/** Each completed item has its message answered; nothing half-written is visible. */
function consistency(db: string) {
  const handle = new Database(db, { readonly: true });
  try {
    return {
      integrity: handle.pragma('integrity_check', { simple: true }),
      messages: handle.prepare('SELECT COUNT(*) FROM messages').pluck().get() as number,
      queue: handle.prepare('SELECT COUNT(*) FROM queue').pluck().get() as number,
      completedWithoutReply: handle
        .prepare("SELECT COUNT(*) FROM queue q JOIN messages m ON m.id = q.message_id WHERE q.status = 'completed' AND (m.agent_response IS NULL OR m.processed = 0)")
        .pluck()
        .get() as number,
      orphans: handle.prepare('SELECT COUNT(*) FROM queue q LEFT JOIN messages m ON m.id = q.message_id WHERE m.id IS NULL').pluck().get() as number,
    };
  } finally {
    handle.close();
  }
}

describe('backup of an agent whose real runtime is answering messages', () => {
  it('archives consistent snapshots that verify and restore to a consistent database', async () => {
    const home = join(await tempDir('backup-live'), 'home');
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.queue_refresh = 0.05;
    });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');

    // Messages arrive while the runtime answers them and two backups are taken.
    const db = openDatabase(paths.db);
    const archives: string[] = [];
    const outDir = join(home, 'backups');
    for (let i = 0; i < MESSAGES; i++) {
      storeInbound(db, { platform: 'local', platformUserId: `user-${i % 7}`, username: `u${i % 7}`, text: `message ${i}` });
      if (i === MESSAGES / 2 || i === MESSAGES - 1) {
        archives.push((await backupAgent(paths, { outDir, now: () => new Date(Date.now() + archives.length * 1000) })).archive);
      }
      if (i % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    db.close();
    await runtime.waitForLog((l) => l.msg === 'item completed' && l.item === MESSAGES, 30_000);
    runtime.child.kill('SIGTERM');
    expect((await runtime.exited).code).toBe(0);

    for (const archive of archives) {
      expect(await verifyArchive(archive, undefined, home)).toMatchObject({ ok: true, integrityCheck: 'ok', agentId: paths.agent.id });
    }
    const restored = await restoreAgent({ home, id: paths.agent.id, archive: archives[0]! });
    expect(restored.restored).toContain('animus.db');
    const state = consistency(paths.db);
    expect(state).toMatchObject({ integrity: 'ok', completedWithoutReply: 0, orphans: 0 });
    // The first snapshot was taken after message 200 was stored, before the last one.
    expect(state.messages).toBeGreaterThanOrEqual(MESSAGES / 2 + 1);
    expect(state.messages).toBeLessThan(MESSAGES);
    expect(state.queue).toBe(state.messages);
  });
});
