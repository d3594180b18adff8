import { createHash } from 'node:crypto';
import { readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { expectOneLine } from '../helpers/archives.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import type { AgentPaths } from '../../src/home/layout.js';

/**
 * `backup` prints ✓ only for an archive that `verify` and `restore` accept, and
 * restore brings back the database of anything backup accepted. Both directions:
 * what backup refuses, it refuses in one line with the fix; what it archives with a
 * note (a settings.json animus cannot read yet), verify accepts and restore restores.
 */
let root: string;
let home: string;
let a: AgentPaths;
let out: string;

interface BackupOutput {
  backups: Array<{ id: string; archive: string; notes: string[] }>;
  failed: Array<{ id: string; code: string; message: string }>;
}

beforeEach(async () => {
  root = await tempDir('restorable');
  home = join(root, 'home');
  out = join(root, 'out');
  a = (await deployTestAgent(home)).paths;
});

const GUIDE_SETTINGS = (uuid: string) => ({
  agent: { id: uuid, name: 'My Agent', description: 'Agent for specific tasks' },
  message_processing: { mode: 'live', queue_refresh: 5, max_retries: 3 },
  plugins: { telegram: { enabled: true, parse_mode: 'MarkdownV2' } },
});

function messages(db: string): unknown[] {
  const handle = new Database(db, { readonly: true });
  try {
    return handle.prepare('SELECT id, message FROM messages ORDER BY id').all();
  } finally {
    handle.close();
  }
}

function addMessage(db: string, text: string): void {
  const handle = new Database(db);
  handle.prepare("INSERT INTO messages (role, message, timestamp) VALUES ('user', ?, datetime('now'))").run(text);
  handle.close();
}

async function archivesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** Backs up through the CLI; the archive it reports must verify, and restore must bring back its database. */
async function backupVerifyRestore(settingsText: string, note: RegExp): Promise<void> {
  await writeFile(a.settings, settingsText);
  addMessage(a.db, 'kept by the archive');
  const made = await runCli(['backup', a.agent.id, '--out', out, '--json'], { home });
  expect(made.code, made.stderr).toBe(0);
  const [backup] = json<BackupOutput>(made).backups;
  expect(backup!.notes.join('\n')).toMatch(note);
  expect(made.stderr).toMatch(note);

  const verified = await runCli(['backup', 'verify', backup!.archive, '--json'], { home });
  expect(verified.code, verified.stderr).toBe(0);
  expect(json<{ notes: string[] }>(verified).notes.join('\n')).toMatch(note);

  const archived = messages(a.db);
  addMessage(a.db, 'written after the backup');
  await writeFile(a.settings, '{"changed": true}');
  const restored = await runCli(['restore', a.agent.id, '--from', backup!.archive, '--yes', '--json'], { home });
  expect(restored.code, restored.stderr).toBe(0);
  expect(json<{ restored: string[] }>(restored).restored).toEqual(['animus.db', '.env', 'settings.json']);
  expect(messages(a.db)).toEqual(archived);
  // Restored as it was archived, byte for byte: converting it is adopt's job, as the note says.
  expect(await readFile(a.settings, 'utf8')).toBe(settingsText);
}

describe('backup accepts only what restore can bring back', () => {
  it("a folder laid out by the guide (nested settings.json): archived with a note, verified, restored with its database", async () => {
    await backupVerifyRestore(JSON.stringify(GUIDE_SETTINGS(a.agent.uuid), null, 2), /settings\.json(?: in \S+)? is not in animus's schema \(.*unknown key message_processing.*\): kept as it is; run `animus adopt --apply` to convert it/);
  });

  it('a settings.json that is not JSON: archived with a note, verified, restored with its database', async () => {
    await backupVerifyRestore('{ "message_mode": "live", oops', /settings\.json(?: in \S+)? is not valid JSON .*: kept as it is/);
  });

  it('a .env that is a symlink is refused in one line, and nothing is written', async () => {
    const elsewhere = join(root, 'elsewhere.env');
    await writeFile(elsewhere, 'AGENT_API_KEY=sk-let-4f9a1c2e8b7d\n');
    await rm(a.env);
    await symlink(elsewhere, a.env);
    const result = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(result.code).toBe(5);
    expectOneLine(result.stderr);
    expect(result.stderr).toMatch(/\.env is a symbolic link .*: animus never follows links in an agent folder; replace it with the real file/);
    expect(await archivesIn(join(out, a.agent.id))).toEqual([]);
  });

  it("a settings.json or .env naming another agent is refused (restore would refuse the archive)", async () => {
    const other = 'agent-0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
    const settings = JSON.parse(await readFile(a.settings, 'utf8'));
    await writeFile(a.settings, JSON.stringify({ ...settings, agent: { ...settings.agent, id: other } }));
    const bad = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(bad.code).toBe(5);
    expectOneLine(bad.stderr);
    expect(bad.stderr).toMatch(new RegExp(`settings\\.json names ${other}, not ${a.agent.id}: fix its agent\\.id`));

    await writeFile(a.settings, JSON.stringify(settings));
    const env = await readFile(a.env, 'utf8');
    await writeFile(a.env, env.replace(/^AGENT_ID=.*$/m, `AGENT_ID=${other}`));
    const badEnv = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(badEnv.code).toBe(5);
    expect(badEnv.stderr).toMatch(/\.env has AGENT_ID of another agent/);
    expect(await archivesIn(join(out, a.agent.id))).toEqual([]);
  });

  it('a database that is 0 bytes or has none of the four tables is refused in one line', async () => {
    await writeFile(a.db, '');
    for (const suffix of ['-wal', '-shm']) await rm(`${a.db}${suffix}`, { force: true });
    const zero = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(zero.code).toBe(5);
    expectOneLine(zero.stderr);
    expect(zero.stderr).toMatch(/is empty \(0 bytes\): not backed up/);

    await rm(a.db);
    const db = new Database(a.db);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY)');
    db.close();
    const foreign = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(foreign.code).toBe(5);
    expectOneLine(foreign.stderr);
    expect(foreign.stderr).toMatch(/has none of Broca's tables: it is not an agent's database: not backed up/);
    expect(await archivesIn(join(out, a.agent.id))).toEqual([]);
  });

  it('a database whose index disagrees with its table (quick_check passes, integrity_check does not) is refused: restore would refuse it', async () => {
    for (let i = 0; i < 100; i++) addMessage(a.db, `message ${String(i).padStart(3, '0')}`);
    const handle = new Database(a.db);
    handle.exec('CREATE INDEX idx_test_text ON messages(message)');
    handle.pragma('wal_checkpoint(TRUNCATE)');
    const root = (handle.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'idx_test_text'").get() as { rootpage: number }).rootpage;
    handle.close();
    // The index's last key made larger (its order holds, its row no longer matches it).
    const image = await readFile(a.db);
    const size = image.readUInt16BE(16);
    const page = image.subarray((root - 1) * size, root * size);
    const at = page.indexOf(Buffer.from('message 099'));
    expect(at).toBeGreaterThan(0);
    page[at + 10] = 'z'.charCodeAt(0);
    await writeFile(a.db, image);
    const check = new Database(a.db, { readonly: true });
    expect(check.pragma('quick_check', { simple: true })).toBe('ok');
    expect(check.pragma('integrity_check', { simple: true })).toMatch(/missing from index idx_test_text/);
    check.close();

    const result = await runCli(['backup', a.agent.id, '--out', out], { home });
    expect(result.code).toBe(5);
    expectOneLine(result.stderr);
    expect(result.stderr).toMatch(/fails integrity_check \(row \d+ missing from index idx_test_text.*\): not backed up; restore it from an older archive/);
    expect(await archivesIn(join(out, a.agent.id))).toEqual([]);
  });

  it('an ordinary agent archives with no note, and its archive records the four tables', async () => {
    const made = json<BackupOutput>(await runCli(['backup', a.agent.id, '--out', out, '--json'], { home }));
    expect(made.backups[0]!.notes).toEqual([]);
    const verified = json<{ rows: Record<string, number> }>(await runCli(['backup', 'verify', made.backups[0]!.archive, '--json'], { home }));
    expect(Object.keys(verified.rows)).toEqual(['letta_users', 'platform_profiles', 'messages', 'queue']);
    expect(createHash('sha256').update(await readFile(made.backups[0]!.archive)).digest('hex')).toMatch(/^[0-9a-f]{64}$/);
  });
});
