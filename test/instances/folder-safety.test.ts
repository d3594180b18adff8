import Database from 'better-sqlite3';
import { appendFile, copyFile, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/**
 * Issue 10 items 6 and 7, as they were seen: symlinks in an agent folder are reported
 * by list and health and refused by backup, and DB_PATH cannot split the tools from
 * the runtime. Real folders, real SQLite, the built CLI.
 */
const KEY_A = 'sk-let-4f9a1c2e8b7d';
let home: string;
let root: string;

beforeAll(async () => {
  root = await tempDir('animus-folder-safety');
  home = join(root, 'home');
});

function rows(db: string, sql: string): number {
  const handle = new Database(db, { readonly: true });
  try {
    return (handle.prepare(sql).get() as { n: number }).n;
  } finally {
    handle.close();
  }
}

describe('symlinks in an agent folder', () => {
  it("backup refuses a .env linked to another agent's .env (or /etc/passwd) and archives no key", async () => {
    const a = await deployTestAgent(home, { mode: 'live', endpoint: 'https://api.letta.com', apiKey: KEY_A });
    const b = await deployTestAgent(home, { mode: 'echo' });
    for (const target of [a.paths.env, '/etc/passwd']) {
      await rm(b.paths.env, { force: true });
      await symlink(target, b.paths.env);
      const result = await runCli(['backup', b.id, '--json'], { home });
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toContain(`${b.paths.env} is a symbolic link (to ${target}): animus never follows links in an agent folder`);
      expect(result.stdout + result.stderr).not.toContain(KEY_A);
    }
  });

  it('list and health report a linked .env, settings.json, animus.db, logs/ and a linked agent folder', async () => {
    const h = join(root, 'home-list');
    const a = await deployTestAgent(h, { mode: 'echo' });
    const b = await deployTestAgent(h, { mode: 'echo' });
    const outside = join(root, 'outside');
    await mkdir(outside, { recursive: true });
    await copyFile(b.paths.settings, join(outside, 'settings.json'));
    await rm(b.paths.settings);
    await symlink(join(outside, 'settings.json'), b.paths.settings);
    await rm(b.paths.logs, { recursive: true });
    await symlink(outside, b.paths.logs);
    await copyFile(b.paths.db, join(outside, 'x.db'));
    await rm(b.paths.db);
    await symlink(join(outside, 'x.db'), b.paths.db);
    // An agent folder that is itself a link out of the home.
    const moved = join(root, 'moved-agent');
    const c = await deployTestAgent(h, { mode: 'echo' });
    await copyFile(a.paths.env, join(root, 'spare.env'));
    const { rename } = await import('node:fs/promises');
    await rename(c.paths.dir, moved);
    await symlink(moved, c.paths.dir);

    const list = await runCli(['list', '--json'], { home: h });
    expect(list.code, list.stderr).toBe(0);
    const entries = new Map(json<Array<{ id: string; problems: string[] }>>(list).map((e) => [e.id, e.problems]));
    expect(entries.get(a.id)).toEqual([]);
    const problems = entries.get(b.id)!.join('\n');
    expect(problems).toContain('settings.json is a symbolic link');
    expect(problems).toContain('logs is a symbolic link');
    expect(problems).toContain('animus.db is a symbolic link');
    expect(entries.get(c.id)!.join('\n')).toContain(`${c.paths.dir} is a symbolic link (to ${moved})`);

    const health = await runCli(['health', '--json', '--no-cache'], { home: h });
    expect(health.code).toBe(1);
    const agents = new Map(json<{ agents: Array<{ id: string; healthy: boolean; checks: Array<{ name: string; status: string; message: string }> }> }>(health).agents.map((x) => [x.id, x]));
    expect(agents.get(a.id)!.checks.find((check) => check.name === 'files')).toBeUndefined();
    for (const id of [b.id, c.id]) {
      const files = agents.get(id)!.checks.find((check) => check.name === 'files');
      expect(files, id).toMatchObject({ status: 'fail', message: expect.stringContaining('is a symbolic link') });
      expect(agents.get(id)!.healthy).toBe(false);
    }
    expect(agents.get(b.id)!.checks.find((check) => check.name === 'logs')).toMatchObject({ status: 'fail' });
  });

  it('remove --purge deletes the links, never what they point at', async () => {
    const h = join(root, 'home-purge');
    const a = await deployTestAgent(h, { mode: 'echo' });
    const b = await deployTestAgent(h, { mode: 'echo' });
    await rm(b.paths.logs, { recursive: true });
    await symlink(a.paths.dir, b.paths.logs);
    await rm(b.paths.env);
    await symlink(a.paths.env, b.paths.env);
    const result = await runCli(['remove', b.id, '--purge', '--yes'], { home: h });
    expect(result.code, result.stderr).toBe(0);
    await expect(lstat(b.paths.dir)).rejects.toThrow();
    expect((await stat(a.paths.env)).isFile()).toBe(true);
    expect((await stat(a.paths.db)).isFile()).toBe(true);
    // And an agent folder that is itself a link: the link goes, the folder it names stays.
    const c = await deployTestAgent(h, { mode: 'echo' });
    const { rename } = await import('node:fs/promises');
    const moved = join(root, 'purge-moved');
    await rename(c.paths.dir, moved);
    await symlink(moved, c.paths.dir);
    expect((await runCli(['remove', c.id, '--purge', '--yes'], { home: h })).code).toBe(0);
    expect((await stat(join(moved, '.env'))).isFile()).toBe(true);
  });
});

describe('DB_PATH and the tools', () => {
  it('backup archives the database the runtime really uses, with both files present', async () => {
    const h = join(root, 'home-dbpath');
    const { paths, id } = await deployTestAgent(h, { mode: 'echo' });
    await copyFile(paths.db, join(paths.dir, 'queue.db'));
    await appendFile(paths.env, 'DB_PATH=queue.db\n');
    expect((await runCli(['send', id, 'kept in queue.db'], { home: h })).code).toBe(0);
    expect(rows(join(paths.dir, 'queue.db'), 'SELECT COUNT(*) AS n FROM queue')).toBe(1);
    expect(rows(paths.db, 'SELECT COUNT(*) AS n FROM queue')).toBe(0);

    const backup = await runCli(['backup', id, '--json'], { home: h });
    expect(backup.code, backup.stderr).toBe(0);
    const archive = json<{ backups: Array<{ archive: string }> }>(backup).backups[0]!.archive;
    const restoreHome = join(root, 'home-dbpath-restored');
    await mkdir(restoreHome, { recursive: true });
    const restored = await runCli(['restore', id, '--from', archive, '--no-start', '--yes', '--json'], { home: restoreHome });
    expect(restored.code, restored.stderr).toBe(0);
    // The archive's .env still says DB_PATH=queue.db; the restored database holds the message.
    const restoredDir = join(restoreHome, id);
    const env = await readFile(join(restoredDir, '.env'), 'utf8');
    expect(env).toContain('DB_PATH=queue.db');
    const queue = await runCli(['queue', 'list', id, '--json'], { home: restoreHome });
    expect(queue.code, queue.stderr).toBe(0);
    expect(json<{ total: number }>(queue).total).toBe(1);
  });

  it('queue refuses a DB_PATH outside the folder with one line, exit 5', async () => {
    const h = join(root, 'home-dbpath-out');
    const other = await deployTestAgent(h, { mode: 'echo' });
    const { paths, id } = await deployTestAgent(h, { mode: 'echo' });
    await appendFile(paths.env, `DB_PATH=${other.paths.db}\n`);
    const result = await runCli(['queue', 'list', id], { home: h });
    expect(result.code).toBe(5);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('is outside the agent folder');
  });

  it('adopt converts a Broca DB_PATH=sanctum.db into animus.db and comments DB_PATH out', async () => {
    const h = join(root, 'home-adopt');
    const { paths, id } = await deployTestAgent(h, { mode: 'echo' });
    await rm(paths.db);
    await rm(`${paths.db}-wal`, { force: true });
    await rm(`${paths.db}-shm`, { force: true });
    const { makeBrocaDatabase } = await import('../helpers/broca.js');
    await mkdir(join(paths.dir, 'broca'), { recursive: true });
    makeBrocaDatabase(join(paths.dir, 'broca', 'sanctum.db'));
    await appendFile(paths.env, 'DB_PATH=sanctum.db\n');
    const result = await runCli(['adopt', id, '--apply', '--json'], { home: h });
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const env = await readFile(paths.env, 'utf8');
    expect(env).toMatch(/^# DB_PATH=sanctum\.db {2}# animus adopt: the database is animus\.db$/m);
    expect(await readFile(`${paths.env}.pre-adopt`, 'utf8')).toMatch(/^DB_PATH=sanctum\.db$/m);
    expect(rows(paths.db, 'SELECT COUNT(*) AS n FROM messages')).toBe(rows(join(paths.dir, 'broca', 'sanctum.db'), 'SELECT COUNT(*) AS n FROM messages'));
  });

  it('adopt refuses a DB_PATH outside the folder and changes nothing', async () => {
    const h = join(root, 'home-adopt-out');
    const { paths, id } = await deployTestAgent(h, { mode: 'echo' });
    await appendFile(paths.env, 'DB_PATH=/srv/broca/sanctum.db\n');
    const before = await readFile(paths.env, 'utf8');
    const result = await runCli(['adopt', id, '--apply', '--json'], { home: h });
    expect(result.stdout + result.stderr).toContain('DB_PATH=/srv/broca/sanctum.db in .env is outside the agent folder');
    expect(await readFile(paths.env, 'utf8')).toBe(before);
    await writeFile(paths.env, before);
  });
});

describe('health and log sizes', () => {
  it('warns about a runtime.log that rotation is not keeping under log_max_mb', async () => {
    const h = join(root, 'home-logsize');
    const { paths, id } = await deployTestAgent(h, { mode: 'echo' });
    const settings = JSON.parse(await readFile(paths.settings, 'utf8'));
    settings.log_max_mb = 1;
    await writeFile(paths.settings, JSON.stringify(settings));
    await mkdir(paths.logs, { recursive: true });
    await writeFile(paths.outLog, 'x'.repeat(1024 * 1024));
    const ok = json<{ agents: Array<{ checks: Array<{ name: string; status: string; message: string }> }> }>(await runCli(['health', id, '--json', '--no-cache'], { home: h }));
    expect(ok.agents[0]!.checks.find((c) => c.name === 'logs')).toMatchObject({ status: 'ok' });
    await writeFile(paths.outLog, 'x'.repeat(3 * 1024 * 1024));
    const big = json<{ agents: Array<{ checks: Array<{ name: string; status: string; message: string }> }> }>(await runCli(['health', id, '--json', '--no-cache'], { home: h }));
    expect(big.agents[0]!.checks.find((c) => c.name === 'logs')).toMatchObject({ status: 'warn', message: expect.stringMatching(/^logs\/runtime\.log is 3\.0 MiB, above log_max_mb 1: rotation is not keeping it under its limit/) });
  });
});
