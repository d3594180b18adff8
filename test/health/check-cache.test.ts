import { appendFile, chmod, cp, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { git } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { runHealth } from '../../src/health/run-health.js';
import { loadHealthCache, recall, remember, saveHealthCache, type AgentMemory } from '../../src/health/check-cache.js';
import type { AgentHealth, CheckName } from '../../src/health/types.js';
import type { AgentPaths } from '../../src/home/layout.js';

let home: string;

beforeAll(async () => {
  home = join(await tempDir('health-cache'), 'home');
  await deployTestAgent(home);
});

function check(agent: AgentHealth, name: CheckName) {
  const found = agent.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no ${name} check in ${JSON.stringify(agent.checks)}`);
  return found;
}

function readCache(): Record<string, AgentMemory> {
  const cache = loadHealthCache(home);
  return Object.fromEntries(Object.keys(cache).map((id) => [id, recall(cache, id)!]));
}

/**
 * Writes a marker into what health remembered of an agent: a run that reports the
 * marker answered from memory; a run that does not read the files again.
 */
async function mark(id: string): Promise<void> {
  const cache = loadHealthCache(home);
  const memory = recall(cache, id)!;
  memory.folder!.value.settings.check.message = 'REMEMBERED settings';
  memory.folder!.value.env.message = 'REMEMBERED env';
  memory.folder!.value.clone!.files.commit = 'f'.repeat(40);
  memory.db!.value.queue!.pending = 77;
  remember(cache, id, memory);
  await saveHealthCache(home, cache);
}

/** Waits out the file system's clock tick, so that what the test just wrote counts as settled with settleMs 0. */
const tick = () => new Promise((resolve) => setTimeout(resolve, 25));

async function settled(agent: AgentPaths, now?: string): Promise<AgentHealth> {
  await tick();
  return (await runHealth({ home, ids: [agent.agent.id], settleMs: 0, ...(now ? { now: () => Date.parse(now) } : {}) })).agents[0]!;
}

describe('health cache', () => {
  it('remembers nothing read from files that changed within the settle time', async () => {
    const agent = (await deployTestAgent(home)).paths;
    await runHealth({ home, ids: [agent.agent.id] });
    expect(readCache()[agent.agent.id]).toBeUndefined();
    await settled(agent);
    expect(Object.keys(readCache()[agent.agent.id] ?? {}).sort()).toEqual(['db', 'folder', 'logs']);
  });

  it('answers from memory while the files hold still', async () => {
    const agent = (await deployTestAgent(home)).paths;
    await settled(agent);
    await mark(agent.agent.id);
    const health = await settled(agent);
    expect(check(health, 'settings').message).toBe('REMEMBERED settings');
    expect(check(health, 'env').message).toBe('REMEMBERED env');
    expect(health.facts.commit).toBe('f'.repeat(40));
    expect(health.facts.queue?.pending).toBe(77);
    // --no-cache reads everything.
    const fresh = (await runHealth({ home, ids: [agent.agent.id], cache: false })).agents[0]!;
    expect(check(fresh, 'settings').message).not.toContain('REMEMBERED');
    expect(fresh.facts.queue?.pending).toBe(0);
  });

  it("does not serve what another animus version remembered", async () => {
    const agent = (await deployTestAgent(home)).paths;
    await settled(agent);
    await mark(agent.agent.id);
    const file = join(home, '.animus', 'health-cache');
    const [header, ...lines] = (await readFile(file, 'utf8')).split('\n');
    await writeFile(file, [header!.replace(/ \S+$/, ' 0.0.1-older'), ...lines].join('\n'));
    const health = await settled(agent);
    expect(check(health, 'settings').message).toMatch(/^valid/);
    expect(health.facts.queue?.pending).toBe(0);
    await rm(agent.dir, { recursive: true });
  });

  it('reads again each file that changed, and nothing else', async () => {
    const agent = (await deployTestAgent(home)).paths;
    await settled(agent);

    // settings.json rewritten with the same text: its identity moved, so it and what depends on it are read again.
    await mark(agent.agent.id);
    await writeFile(agent.settings, await readFile(agent.settings));
    let health = await settled(agent);
    expect(check(health, 'settings').message).toMatch(/^valid/);
    expect(check(health, 'env').message).toMatch(/^0600/);
    expect(health.facts.queue?.pending).toBe(77);

    await mark(agent.agent.id);
    await chmod(agent.env, 0o640);
    health = await settled(agent);
    expect(check(health, 'env')).toMatchObject({ status: 'fail', message: expect.stringContaining('0640') });
    await chmod(agent.env, 0o600);

    await settled(agent);
    await mark(agent.agent.id);
    const db = new Database(agent.db);
    db.prepare("INSERT INTO queue (status) VALUES ('pending')").run();
    db.close();
    health = await settled(agent);
    expect(health.facts.queue?.pending).toBe(1);
    expect(check(health, 'settings').message).toBe('REMEMBERED settings');

    // A commit in the clone moves its branch ref (packed at deploy, loose now).
    await settled(agent);
    await mark(agent.agent.id);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '--allow-empty', '-m', 'local'], agent.clone);
    const commit = (await git(['rev-parse', 'HEAD'], agent.clone)).trim();
    health = await settled(agent);
    expect(health.facts.commit).toBe(commit);

    // The working tree is compared with the index at every run, remembered or not.
    await settled(agent);
    await writeFile(join(agent.clone, 'package.json'), '{}\n');
    health = await settled(agent);
    expect(check(health, 'clone')).toMatchObject({ status: 'warn', message: expect.stringContaining('package.json') });

    // A database replaced by a broken file is never answered from memory.
    await rm(`${agent.db}-wal`, { force: true });
    await writeFile(agent.db, Buffer.alloc(8192, 3));
    health = await settled(agent);
    expect(check(health, 'database').status).toBe('fail');
    await rm(agent.dir, { recursive: true });
  });

  it("checks the database DB_PATH names, from memory too, and follows a new DB_PATH at the next run", async () => {
    const agent = (await deployTestAgent(home)).paths;
    const pending = async (file: string, rows: number) => {
      const db = new Database(join(agent.dir, file));
      for (let i = 0; i < rows; i++) db.prepare("INSERT INTO queue (status) VALUES ('pending')").run();
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    };
    await mkdir(join(agent.dir, 'data'), { mode: 0o700 });
    await cp(agent.db, join(agent.dir, 'data', 'one.db'));
    await cp(agent.db, join(agent.dir, 'data', 'two.db'));
    await pending('data/one.db', 2);
    await pending('data/two.db', 5);
    const env = await readFile(agent.env, 'utf8');
    await writeFile(agent.env, `${env}DB_PATH=data/one.db\n`, { mode: 0o600 });
    expect((await settled(agent)).facts.queue?.pending).toBe(2);
    // From memory: the .env did not move, nor did the database.
    const remembered = await settled(agent);
    expect(remembered.facts.queue?.pending).toBe(2);
    expect(check(remembered, 'database').status).toBe('ok');

    await writeFile(agent.env, `${env}DB_PATH=data/two.db\n`, { mode: 0o600 });
    expect((await settled(agent)).facts.queue?.pending).toBe(5);

    // One that leaves the folder, and a link as the database, are reported (files and database) from memory too.
    await writeFile(agent.env, `${env}DB_PATH=../elsewhere.db\n`, { mode: 0o600 });
    for (let run = 0; run < 2; run++) {
      const outside = await settled(agent);
      expect(check(outside, 'files').message).toMatch(/DB_PATH=\.\.\/elsewhere\.db .* is outside the agent folder/);
      expect(check(outside, 'database').status).toBe('fail');
    }
    await writeFile(agent.env, `${env}DB_PATH=data/one.db\n`, { mode: 0o600 });
    await rm(join(agent.dir, 'data', 'one.db'));
    await symlink(join(agent.dir, 'data', 'two.db'), join(agent.dir, 'data', 'one.db'));
    for (let run = 0; run < 2; run++) {
      const linked = await settled(agent);
      expect(check(linked, 'files').message).toMatch(/data\/one\.db is a symbolic link/);
      expect(check(linked, 'database')).toMatchObject({ status: 'fail', message: expect.stringMatching(/is a symbolic link/) });
    }
    await rm(agent.dir, { recursive: true });
  });

  it("finds a Broca-made clone in broca/, and notices when runtime/ appears or the clone goes", async () => {
    const agent = (await deployTestAgent(home)).paths;
    const broca = join(agent.dir, 'broca');
    await rename(agent.clone, broca);
    let health = await settled(agent);
    expect(check(health, 'clone').status).toBe('ok');
    const commit = health.facts.commit;

    // runtime/ appearing beside broca/ takes precedence, though nothing in broca/ moved.
    await mark(agent.agent.id);
    await cp(broca, agent.clone, { recursive: true, preserveTimestamps: true });
    health = await settled(agent);
    expect(health.facts.commit).toBe(commit);
    await rm(broca, { recursive: true });

    await mark(agent.agent.id);
    await rm(agent.clone, { recursive: true });
    health = await settled(agent);
    expect(check(health, 'clone')).toMatchObject({ status: 'fail', message: expect.stringContaining('no runtime clone') });
    await rm(agent.dir, { recursive: true });
  });

  it('reads a large index at every run instead of remembering it, and still sees an edit', async () => {
    const agent = (await deployTestAgent(home)).paths;
    for (let i = 0; i < 70; i++) await writeFile(join(agent.clone, `file-${i}.txt`), `${i}\n`);
    await git(['add', '.'], agent.clone);
    await git(['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '--quiet', '-m', 'many files'], agent.clone);
    await settled(agent);
    const folder = readCache()[agent.agent.id]?.folder?.value;
    expect(folder?.clone).toMatchObject({ indexTooLarge: true });
    expect(folder?.clone?.files.index).toBeUndefined();
    await writeFile(join(agent.clone, 'file-33.txt'), 'changed\n');
    const health = await settled(agent);
    expect(check(health, 'clone')).toMatchObject({ status: 'warn', message: expect.stringContaining('file-33.txt') });
    await rm(agent.dir, { recursive: true });
  });

  it('remembers which files logs/ holds, and still reads their sizes at every run', async () => {
    const agent = (await deployTestAgent(home)).paths;
    await writeFile(agent.outLog, 'a'.repeat(1000));
    await settled(agent);
    await settled(agent);
    expect(readCache()[agent.agent.id]?.logs?.value).toEqual(['runtime.log']);

    await appendFile(agent.outLog, 'b'.repeat(24));
    let health = await settled(agent);
    expect(health.facts.logsBytes).toBe(1024);

    await writeFile(agent.errLog, 'c'.repeat(1024));
    health = await settled(agent);
    expect(health.facts.logsBytes).toBe(2048);

    // Rotated logs in a subfolder are counted too (that listing is read at every run).
    await mkdir(join(agent.logs, 'old'));
    await writeFile(join(agent.logs, 'old', 'runtime.log.1'), 'd'.repeat(1024));
    health = await settled(agent);
    expect(health.facts.logsBytes).toBe(3072);
    await writeFile(join(agent.logs, 'old', 'runtime.log.2'), 'e'.repeat(1024));
    health = await settled(agent);
    expect(health.facts.logsBytes).toBe(4096);
    await rm(agent.dir, { recursive: true });
  });

  it('ages a remembered queue to the time of each run', async () => {
    const agent = (await deployTestAgent(home)).paths;
    const db = new Database(agent.db);
    db.prepare("INSERT INTO queue (status, timestamp) VALUES ('pending', '2026-01-01 00:00:00')").run();
    db.close();
    expect((await settled(agent, '2026-01-01T00:01:00Z')).facts.queue).toEqual({ pending: 1, processing: 0, failed: 0, oldestPendingAgeS: 60 });
    await mark(agent.agent.id);
    const later = await settled(agent, '2026-01-01T00:21:00Z');
    expect(later.facts.queue).toEqual({ pending: 77, processing: 0, failed: 0, oldestPendingAgeS: 1260 });
    expect(check(later, 'queue').status).toBe('fail');
    await rm(agent.dir, { recursive: true });
  });

  it('forgets agents that are gone', async () => {
    const agent = (await deployTestAgent(home)).paths;
    await tick();
    await runHealth({ home, settleMs: 0 });
    expect(readCache()[agent.agent.id]).toBeDefined();
    await rm(agent.dir, { recursive: true });
    const other = (await deployTestAgent(home)).paths;
    await tick();
    await runHealth({ home, settleMs: 0 });
    const cache = await readCache();
    expect(cache[agent.agent.id]).toBeUndefined();
    expect(cache[other.agent.id]).toBeDefined();
  });
});

describe('where the cache lives', () => {
  it("in the home's .animus/ when there is one, else in the user's cache folder, one file per home, never making .animus/", async () => {
    const { mkdir, readdir } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { cachePath, saveHealthCache } = await import('../../src/health/check-cache.js');
    const { tempDir } = await import('../helpers/temp.js');
    const root = await tempDir('cache-where');
    const byHand = join(root, 'by-hand');
    const other = join(root, 'other');
    await mkdir(byHand);
    await mkdir(other);
    const env = { XDG_CACHE_HOME: join(root, 'cache') };
    expect(cachePath(byHand, env).startsWith(join(root, 'cache', 'animus', 'health'))).toBe(true);
    expect(cachePath(byHand, env)).not.toBe(cachePath(other, env));
    await mkdir(join(other, '.animus'));
    expect(cachePath(other, env)).toBe(join(other, '.animus', 'health-cache'));
    const saved = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = env.XDG_CACHE_HOME;
    try {
      await saveHealthCache(byHand, {});
    } finally {
      if (saved === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved;
    }
    expect(await readdir(byHand)).toEqual([]);
    expect(await readdir(join(root, 'cache', 'animus', 'health'))).toHaveLength(1);
  });
});
