import { execa, type ResultPromise } from 'execa';
import { createHash } from 'node:crypto';
import { open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { commitToBare, git } from '../helpers/git.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { backupAgent, pruneArchives } from '../../src/backup/create-backup.js';
import { deriveNewKey } from '../../src/backup/cipher.js';
import { listArchives } from '../../src/backup/list-backups.js';
import { extractArchive, readManifest } from '../../src/backup/read-archive.js';
import { restoreAgent, type ProcessControl } from '../../src/backup/restore-backup.js';
import { verifyArchive } from '../../src/backup/verify-backup.js';
import { writeArchive } from '../../src/backup/write-archive.js';
import { FORMAT, FORMAT_VERSION } from '../../src/backup/archive-format.js';
import { reforge } from '../helpers/archives.js';
import { homeLayout, type AgentPaths } from '../../src/home/layout.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

let root: string;
let home: string;
let out: string;
let a: AgentPaths;
let b: AgentPaths;
const writers: ResultPromise[] = [];

beforeAll(async () => {
  root = await tempDir('backup');
  home = join(root, 'home');
  out = join(root, 'out');
  a = (await deployTestAgent(home)).paths;
  b = (await deployTestAgent(home)).paths;
});

afterAll(async () => {
  for (const writer of writers) {
    if (writer.pid && writer.exitCode === null) {
      try {
        process.kill(writer.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  await Promise.allSettled(writers);
});

async function sha(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function folderState(paths: AgentPaths): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const name of (await readdir(paths.dir)).sort()) {
    const path = join(paths.dir, name);
    state[name] = (await stat(path)).isFile() ? await sha(path) : 'dir';
  }
  return state;
}

function rows(db: string): unknown[] {
  const handle = new Database(db, { readonly: true });
  try {
    return handle.prepare('SELECT id, message, agent_response FROM messages ORDER BY id').all();
  } finally {
    handle.close();
  }
}

/** A real writer process on the agent's database, as the runtime would be: WAL, small transactions, no pause. */
function startWriter(db: string): ResultPromise {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    const add = db.prepare("INSERT INTO messages (role, message, timestamp, processed, agent_response) VALUES ('user', ?, datetime('now'), 1, ?)");
    const queue = db.prepare("INSERT INTO queue (message_id, status) VALUES (?, 'completed')");
    let n = 0;
    for (;;) {
      db.transaction(() => { for (let i = 0; i < 20; i++) { const id = add.run('m' + n, 'reply ' + n + ' ' + 'x'.repeat(200)).lastInsertRowid; queue.run(id); n++; } })();
      if (n === 200) require('fs').writeSync(1, 'ready\\n');
    }
  `;
  const child = execa('node', ['-e', script, db], { cwd: REPO_ROOT, reject: false, buffer: false });
  writers.push(child);
  return child;
}

function waitForLine(child: ResultPromise, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (data) => String(data).includes(text) && resolve());
    child.once('exit', (code) => reject(new Error(`writer exited (${code}) before "${text}"`)));
  });
}

describe('backup', () => {
  it('takes a consistent archive while a process writes, that verifies and restores to the same rows', async () => {
    const writer = startWriter(a.db);
    await waitForLine(writer, 'ready');
    const result = await backupAgent(a, { outDir: out });
    const second = await backupAgent(a, { outDir: out, now: () => new Date(Date.now() + 1000) });
    process.kill(writer.pid!, 'SIGKILL');
    await writer;

    expect(result.archive.startsWith(join(out, a.agent.id, `${a.agent.id}_`))).toBe(true);
    expect((await stat(result.archive)).mode & 0o777).toBe(0o600);
    expect((await stat(join(out, a.agent.id))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(out, a.agent.id))).toHaveLength(2);
    const { manifest } = await readManifest(result.archive);
    expect(manifest).toMatchObject({ format: FORMAT, formatVersion: FORMAT_VERSION, agentId: a.agent.id, schemaVersion: SCHEMA_VERSION, encrypted: false });
    expect(manifest.clone.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(manifest.files.map((f) => f.name)).toEqual(['animus.db', '.env', 'settings.json']);
    expect(manifest.files[1]!.sha256).toBe(await sha(a.env));

    const verified = await verifyArchive(second.archive, undefined, home);
    expect(verified).toMatchObject({ ok: true, integrityCheck: 'ok', agentId: a.agent.id });

    const live = rows(a.db);
    const restored = await restoreAgent({ home, id: a.agent.id, archive: second.archive });
    expect(restored.restored).toEqual(['animus.db', '.env', 'settings.json']);
    expect(restored.preRestore).toContain(`${a.db}.pre-restore-${restored.preRestore[0]!.split('.pre-restore-')[1]}`);
    const back = rows(a.db) as Array<{ id: number }>;
    expect(back.length).toBeGreaterThanOrEqual(200);
    expect(back.length).toBeLessThanOrEqual(live.length);
    expect(back).toEqual(live.slice(0, back.length));
    // The previous database, WAL included, is kept whole beside it.
    expect(rows(restored.preRestore[0]!)).toEqual(live);
    const check = new Database(a.db, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    check.close();
  });

  it('refuses to archive a corrupt database and leaves no file behind', async () => {
    const bad = (await deployTestAgent(home)).paths;
    const db = await open(bad.db, 'r+');
    await db.write(Buffer.alloc(4096, 0xff), 0, 4096, 4096);
    await db.close();
    await expect(backupAgent(bad, { outDir: out })).rejects.toMatchObject({ code: 'EBADDB' });
    expect(await readdir(join(out, bad.agent.id))).toEqual([]);
    await rm(bad.dir, { recursive: true });
  });

  it('names the agent\'s file, not a scratch path, when the database is not SQLite at all', async () => {
    const bad = (await deployTestAgent(home)).paths;
    await writeFile(bad.db, 'not a database, just text\n'.repeat(100));
    const error = await backupAgent(bad, { outDir: out }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe('EBADDB');
    expect(error?.message).toBe(`${bad.db} is not a SQLite database or is corrupt: restore it with \`animus restore\``);
    expect(await readdir(join(out, bad.agent.id))).toEqual([]);
    await rm(bad.dir, { recursive: true });
  });

  it('names the agent\'s database when it is missing, and writes nothing', async () => {
    const bad = (await deployTestAgent(home)).paths;
    for (const suffix of ['', '-wal', '-shm']) await rm(`${bad.db}${suffix}`, { force: true });
    await expect(backupAgent(bad, { outDir: out })).rejects.toMatchObject({ code: 'ENOTFOUND', message: `database ${bad.db} does not exist: nothing to back up` });
    expect(await readdir(join(out, bad.agent.id))).toEqual([]);
    await rm(bad.dir, { recursive: true });
  });

  it.each([1024, 8192])('archives a %d-byte-page database whose latest rows are only in the WAL', async (pageSize) => {
    const agent = (await deployTestAgent(home)).paths;
    const live = new Database(agent.db);
    try {
      live.pragma('journal_mode = DELETE');
      live.pragma(`page_size = ${pageSize}`);
      live.exec('VACUUM');
      live.pragma('journal_mode = WAL');
      live.pragma('wal_autocheckpoint = 0');
      const add = live.prepare("INSERT INTO messages (role, message, timestamp, processed, agent_response) VALUES ('user', ?, datetime('now'), 1, ?)");
      live.transaction(() => {
        for (let i = 0; i < 300; i++) add.run(`m${i}`, `reply ${i} ${'x'.repeat(300)}`);
      })();
      const result = await backupAgent(agent, { outDir: out });
      expect(await verifyArchive(result.archive, undefined, home)).toMatchObject({ ok: true, integrityCheck: 'ok' });
      const dir = await tempDir(`extract-${pageSize}`);
      const { files } = await extractArchive(result.archive, dir);
      // Archived as SQLite read it: still a WAL database (the flag is only cleared for the in-memory check).
      expect([...(await readFile(files['animus.db']!)).subarray(18, 20)]).toEqual([2, 2]);
      const copy = new Database(files['animus.db']!, { readonly: true });
      try {
        expect(copy.pragma('page_size', { simple: true })).toBe(pageSize);
        expect(copy.prepare('SELECT id, message, agent_response FROM messages ORDER BY id').all()).toEqual(live.prepare('SELECT id, message, agent_response FROM messages ORDER BY id').all());
      } finally {
        copy.close();
      }
    } finally {
      live.close();
      await rm(agent.dir, { recursive: true });
    }
  });

  it('reports the archive\'s size in bytes, plain and encrypted', async () => {
    const dir = join(root, 'sizes');
    const plain = await backupAgent(b, { outDir: dir });
    const sealed = await backupAgent(b, { outDir: dir, key: await deriveNewKey('size check'), now: () => new Date(Date.now() + 1000) });
    expect(plain.bytes).toBe((await stat(plain.archive)).size);
    expect(sealed.bytes).toBe((await stat(sealed.archive)).size);
  });

  it('prunes to the newest N archives of that agent only', async () => {
    const dir = join(root, 'keep');
    const t = Date.parse('2026-05-01T00:00:00Z');
    for (let i = 0; i < 3; i++) await backupAgent(b, { outDir: dir, keep: 2, now: () => new Date(t + i * 60_000) });
    await backupAgent(a, { outDir: dir, now: () => new Date(t) });
    const names = (await readdir(join(dir, b.agent.id))).sort();
    expect(names).toEqual([`${b.agent.id}_20260501T000100000Z.animus-backup`, `${b.agent.id}_20260501T000200000Z.animus-backup`]);
    expect(await pruneArchives(join(dir, a.agent.id), a.agent.id, 1)).toEqual([]);
    const listed = await listArchives(dir);
    expect(listed.map((e) => e.createdAt)).toEqual(['2026-05-01T00:02:00.000Z', '2026-05-01T00:01:00.000Z', '2026-05-01T00:00:00.000Z']);
    expect((await listArchives(dir, b.agent.id)).every((e) => e.agentId === b.agent.id)).toBe(true);
  });
});

describe('restore refuses bad archives with nothing changed', () => {
  let good: string;
  let encrypted: string;
  const passphrase = 'correct horse battery staple';

  beforeAll(async () => {
    good = (await backupAgent(b, { outDir: out })).archive;
    encrypted = (await backupAgent(b, { outDir: join(root, 'enc'), key: await deriveNewKey(passphrase) })).archive;
  });

  async function expectRefused(archive: string, code: string, message: RegExp, pass?: string, id = b.agent.id): Promise<void> {
    const before = await folderState(b);
    const calls: string[] = [];
    const control: ProcessControl = {
      stop: async () => (calls.push('stop'), { wasRunning: true }),
      start: async () => (calls.push('start'), { ok: true }),
    };
    await expect(restoreAgent({ home, id, archive, passphrase: pass, process: control })).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    expect(calls).toEqual([]);
    expect(await folderState(b)).toEqual(before);
    expect(await readdir(homeLayout(home).stagingDir)).toEqual([]);
  }

  it('a tampered plain archive', async () => {
    const copy = join(root, 'tampered.animus-backup');
    const data = await readFile(good);
    data[data.length - 700]! ^= 0x01;
    await writeFile(copy, data);
    await expect(verifyArchive(copy, undefined, home)).rejects.toMatchObject({ code: 'EBADARCHIVE', message: expect.stringMatching(/checksum/) });
    await expectRefused(copy, 'EBADARCHIVE', /does not match its checksum/);
  });

  it('a tampered encrypted archive, body or manifest', async () => {
    const data = await readFile(encrypted);
    const body = Buffer.from(data);
    body[body.length - 40]! ^= 0x01;
    await writeFile(join(root, 'tampered-body.animus-backup'), body);
    await expectRefused(join(root, 'tampered-body.animus-backup'), 'EBADARCHIVE', /failed authentication/, passphrase);
    // Same length, valid JSON: only the authentication can catch it.
    const header = Buffer.from(data.toString('latin1').replace(`"schemaVersion":${SCHEMA_VERSION}`, `"schemaVersion":${SCHEMA_VERSION - 1}`), 'latin1');
    expect(header.length).toBe(data.length);
    expect(header.equals(data)).toBe(false);
    await writeFile(join(root, 'tampered-header.animus-backup'), header);
    await expectRefused(join(root, 'tampered-header.animus-backup'), 'EBADARCHIVE', /does not match its checksum/, passphrase);
    // A forger who also recomputes the manifest's checksum still fails the authentication.
    await writeFile(join(root, 'forged-header.animus-backup'), reforge(data, (m) => ({ ...m, schemaVersion: m.schemaVersion - 1 })));
    await expectRefused(join(root, 'forged-header.animus-backup'), 'EBADARCHIVE', /failed authentication/, passphrase);
  });

  it('a wrong or missing passphrase', async () => {
    await expectRefused(encrypted, 'EBADARCHIVE', /wrong passphrase/, 'not the passphrase');
    await expectRefused(encrypted, 'EUSAGE', /is encrypted: set ANIMUS_BACKUP_PASSPHRASE/);
    expect(await verifyArchive(encrypted, passphrase, home)).toMatchObject({ ok: true, encrypted: true });
    const { manifest } = await readManifest(encrypted);
    expect(manifest.encrypted).toBe(true);
    expect(JSON.stringify(manifest)).not.toContain(passphrase);
  });

  it("a foreign archive: another agent's, or not an archive at all", async () => {
    const ofA = (await backupAgent(a, { outDir: join(root, 'of-a') })).archive;
    await expectRefused(ofA, 'EBADARCHIVE', new RegExp(`is a backup of ${a.agent.id}, not ${b.agent.id}`));
    const junk = join(root, 'junk.animus-backup');
    await writeFile(junk, 'SQLite format 3\0 but not ours');
    await expectRefused(junk, 'EBADARCHIVE', /not an animus backup archive/);
    await expectRefused(join(root, 'missing.animus-backup'), 'ENOTFOUND', /does not exist/);
  });

  it('an archive whose database is corrupt (checksums intact)', async () => {
    const corruptDb = join(root, 'corrupt.db');
    await writeFile(corruptDb, await readFile(b.db));
    const handle = await open(corruptDb, 'r+');
    await handle.write(Buffer.alloc(4096, 0xab), 0, 4096, 8192);
    await handle.close();
    const { manifest } = await readManifest(good);
    const crafted = join(root, 'corrupt-db.animus-backup');
    await writeArchive(crafted, { ...manifest }, [
      { name: 'animus.db', path: corruptDb, mode: 0o600 },
      { name: 'settings.json', data: await readFile(b.settings), mode: 0o600 },
    ]);
    await expect(verifyArchive(crafted, undefined, home)).rejects.toMatchObject({ code: 'EBADDB' });
    await expectRefused(crafted, 'EBADDB', /integrity_check|not a SQLite database|corrupt/);
  });
});

describe('restore', () => {
  it('stops the instance before touching files and starts it after, when it was running', async () => {
    const archive = (await backupAgent(b, { outDir: out })).archive;
    const dbBefore = await sha(b.db);
    const events: string[] = [];
    const control: ProcessControl = {
      stop: async (paths) => {
        events.push(`stop ${paths.agent.id} ${(await sha(paths.db)) === dbBefore ? 'untouched' : 'changed'}`);
        return { wasRunning: true };
      },
      start: async (paths, settings) => {
        events.push(`start ${paths.agent.id} ${settings?.agent.id}`);
        return { ok: true };
      },
    };
    const result = await restoreAgent({ home, id: b.agent.id, archive, process: control });
    expect(events).toEqual([`stop ${b.agent.id} untouched`, `start ${b.agent.id} ${b.agent.id}`]);
    expect(result.process).toEqual({ stopped: 'stopped', started: 'started' });

    const notRunning: ProcessControl = { stop: async () => ({ wasRunning: false }), start: async () => { throw new Error('must not start'); } };
    expect((await restoreAgent({ home, id: b.agent.id, archive, process: notRunning })).process).toEqual({ stopped: 'was-not-running', started: 'skipped' });
  });

  it('recreates a missing agent from its archive', async () => {
    const gone = (await deployTestAgent(home)).paths;
    const db = new Database(gone.db);
    db.prepare("INSERT INTO messages (role, message) VALUES ('user', 'remember me')").run();
    db.close();
    const archive = (await backupAgent(gone, { outDir: out })).archive;
    await rm(gone.dir, { recursive: true });
    const result = await restoreAgent({ home, id: gone.agent.id, archive });
    expect(result.recreated).toBe(true);
    expect(rows(gone.db)).toEqual([{ id: 1, message: 'remember me', agent_response: null }]);
    expect(await git(['rev-parse', 'HEAD'], gone.clone)).toBe(result.commit.recorded);
    expect((await stat(gone.env)).mode & 0o777).toBe(0o600);
  });

  it('--code checks out the recorded commit, and refuses a clone with local changes', async () => {
    const agent = (await deployTestAgent(home)).paths;
    const archive = (await backupAgent(agent, { outDir: out })).archive;
    const recorded = await git(['rev-parse', 'HEAD'], agent.clone);
    const next = await commitToBare(homeLayout(home).runtimeRepo, { 'NEWS.md': 'next\n' }, 'next');
    await git(['pull', '--quiet', '--ff-only'], agent.clone);
    expect(await git(['rev-parse', 'HEAD'], agent.clone)).toBe(next);

    await writeFile(join(agent.clone, 'NEWS.md'), 'edited by hand\n');
    const before = await sha(agent.db);
    await expect(restoreAgent({ home, id: agent.agent.id, archive, code: true })).rejects.toMatchObject({ code: 'EEXISTS', message: expect.stringContaining('NEWS.md') });
    expect(await sha(agent.db)).toBe(before);
    await git(['checkout', '--', 'NEWS.md'], agent.clone);

    const result = await restoreAgent({ home, id: agent.agent.id, archive, code: true });
    expect(result.commit).toEqual({ recorded, checkedOut: true });
    expect(await git(['rev-parse', 'HEAD'], agent.clone)).toBe(recorded);
  });

  it('refuses while an update or rollback holds the agent, with nothing touched', async () => {
    const archive = (await backupAgent(b, { outDir: out })).archive;
    const holder = execa('sleep', ['30'], { reject: false });
    writers.push(holder);
    await new Promise((resolve) => holder.once('spawn', resolve));
    const { mkdir } = await import('node:fs/promises');
    const { hostname } = await import('node:os');
    const { lockFileOf, processStart } = await import('../../src/instances/operation-lock.js');
    await mkdir(dirname(lockFileOf(b)), { recursive: true });
    await writeFile(lockFileOf(b), JSON.stringify({ pid: holder.pid, start: processStart(holder.pid!), host: hostname(), command: 'update', since: new Date().toISOString(), nonce: 'x' }));
    const before = await sha(b.db);
    const calls: string[] = [];
    const control: ProcessControl = { stop: async () => (calls.push('stop'), { wasRunning: true }), start: async () => (calls.push('start'), { ok: true }) };
    await expect(restoreAgent({ home, id: b.agent.id, archive, process: control })).rejects.toMatchObject({ code: 'EEXISTS', message: expect.stringContaining(`pid ${holder.pid}`) });
    expect(calls).toEqual([]);
    expect(await sha(b.db)).toBe(before);
    holder.kill('SIGKILL');
    await holder;
    // The holder is gone: its lock is stale and the restore goes ahead.
    expect((await restoreAgent({ home, id: b.agent.id, archive })).restored).toContain('animus.db');
  });
});
