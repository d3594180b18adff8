import { execa } from 'execa';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, json, runCli } from '../helpers/cli.js';
import { commitToBare, git, makeBareRepo } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const A = '721679f6-c8af-4e01-8677-dc042dc80368';
const B = '9a2b3c4d-5e6f-7890-abcd-ef1234567890';
const C = '0b6c7a42-1f0e-4c57-9b8e-3a4e6f1d2c3b';

let root: string;
let home: string;

beforeAll(async () => {
  root = await tempDir('deploy');
  home = join(root, 'home');
});

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

async function stagingDebris(h: string): Promise<string[]> {
  return entries(join(h, '.animus', 'staging'));
}

describe('animus deploy', () => {
  it('creates a complete, private agent folder from the home\'s own runtime', async () => {
    const result = await runCli(['deploy', A, '--mode', 'echo', '--name', 'Support', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ id: string; dir: string; commit: string; mode: string }>(result);
    const dir = join(home, `agent-${A}`);
    expect(out).toMatchObject({ id: `agent-${A}`, dir, mode: 'echo' });

    expect(await entries(dir)).toEqual(['.env', 'animus.db', 'logs', 'runtime', 'settings.json']);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'logs'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, '.env'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'animus.db'))).mode & 0o777).toBe(0o600);
    expect((await stat(home)).mode & 0o777).toBe(0o700);

    const env = await readFile(join(dir, '.env'), 'utf8');
    expect(env).toContain(`AGENT_ID=agent-${A}\n`);
    expect(env).toMatch(/^# TELEGRAM_BOT_TOKEN=$/m);
    expect(env).toMatch(/^# TELEGRAM_SESSION_STRING=$/m);

    const settings = JSON.parse(await readFile(join(dir, 'settings.json'), 'utf8'));
    expect(settings).toMatchObject({ agent: { id: `agent-${A}`, name: 'Support' }, message_mode: 'echo', process_manager: 'pm2' });

    const db = new Database(join(dir, 'animus.db'), { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all();
    expect(tables).toEqual(['agent_requests', 'letta_users', 'messages', 'platform_profiles', 'queue']);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'queue' AND name LIKE 'idx_%'").pluck().all();
    expect(indexes).toContain('idx_queue_status_due');
    db.close();

    // The clone is the runtime repo's main, and a clone of its own.
    const runtimeRepo = join(home, '.animus', 'runtime.git');
    expect(out.commit).toBe(await git(['rev-parse', 'main'], runtimeRepo));
    expect(await git(['rev-parse', 'HEAD'], join(dir, 'runtime'))).toBe(out.commit);
    expect(await entries(join(dir, 'runtime'))).toEqual(['.git', 'main.js', 'package.json']);
    // A lean clone (refs packed, no clone-time reflog) that still behaves as one.
    expect(await entries(join(dir, 'runtime', '.git'))).toEqual(['HEAD', 'config', 'index', 'objects', 'packed-refs', 'refs']);
    expect(await git(['rev-parse', '--abbrev-ref', '@{upstream}'], join(dir, 'runtime'))).toBe('origin/main');
    await git(['fetch', '--quiet'], join(dir, 'runtime'));
    expect(await git(['status', '--porcelain'], join(dir, 'runtime'))).toBe('');
    await expect(stat(join(dir, 'runtime', 'node_modules'))).rejects.toThrow();
    expect(await stagingDebris(home)).toEqual([]);
  });

  it('makes clones that share no alternates and survive the loss of their source', async () => {
    const source = join(root, 'src.git');
    const commit = await makeBareRepo(source, { 'package.json': '{"main":"main.js"}\n', 'main.js': 'console.log(1)\n' });
    const h = join(root, 'home-independent');
    const result = await runCli(['deploy', B, '--mode', 'echo', '--repo', source, '--json'], { home: h });
    expect(result.code, result.stderr).toBe(0);
    const clone = join(h, `agent-${B}`, 'runtime');
    await expect(stat(join(clone, '.git', 'objects', 'info', 'alternates'))).rejects.toThrow();
    await execa('rm', ['-rf', source]);
    expect(await git(['fsck', '--full'], clone)).toBe('');
    expect(await git(['rev-parse', 'HEAD'], clone)).toBe(commit);
  });

  it('checks out --ref: a branch, a tag or a commit', async () => {
    const source = join(root, 'refs.git');
    const first = await makeBareRepo(source, { 'main.js': 'v1\n', 'package.json': '{}\n' });
    const second = await commitToBare(source, { 'main.js': 'v2\n' }, 'second');
    const h = join(root, 'home-refs');
    const byCommit = await runCli(['deploy', A, '--mode', 'echo', '--repo', source, '--ref', first, '--json'], { home: h });
    expect(byCommit.code, byCommit.stderr).toBe(0);
    expect(json<{ commit: string }>(byCommit).commit).toBe(first);
    const byBranch = await runCli(['deploy', B, '--mode', 'echo', '--repo', source, '--ref', 'main', '--json'], { home: h });
    expect(json<{ commit: string }>(byBranch).commit).toBe(second);
  });

  it('takes the key from AGENT_API_KEY and never prints it', async () => {
    const h = join(root, 'home-key');
    const key = 'sk-let-very-secret-key-0123456789';
    const result = await runCli(['deploy', A, '--endpoint', 'https://api.letta.com', '--json'], { home: h, env: { AGENT_API_KEY: key } });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout + result.stderr).not.toContain(key);
    const env = await readFile(join(h, `agent-${A}`, '.env'), 'utf8');
    expect(env).toContain(`AGENT_API_KEY=${key}\n`);
    expect(env).toContain('AGENT_ENDPOINT=https://api.letta.com\n');
  });

  it('writes --env and --env-file values, filling documented placeholders', async () => {
    const h = join(root, 'home-env');
    const file = join(root, 'extra.env');
    await writeFile(file, 'TELEGRAM_BOT_TOKEN=123:from-file\nCUSTOM="two words"\n');
    const result = await runCli(['deploy', A, '--mode', 'echo', '--env-file', file, '--env', 'TELEGRAM_OWNER_ID=42', '--env', 'TELEGRAM_BOT_TOKEN=123:from-flag'], { home: h });
    expect(result.code, result.stderr).toBe(0);
    const env = await readFile(join(h, `agent-${A}`, '.env'), 'utf8');
    expect(env).toMatch(/^TELEGRAM_BOT_TOKEN=123:from-flag$/m);
    expect(env).not.toMatch(/^# TELEGRAM_BOT_TOKEN=/m);
    expect(env).toMatch(/^TELEGRAM_OWNER_ID=42$/m);
    expect(env).toMatch(/^CUSTOM='two words'$/m);
  });

  it('deploys several agents in one command, each with a clone of its own', async () => {
    const h = join(root, 'home-many');
    const result = await runCli(['deploy', A, B, C, '--mode', 'echo', '--json'], { home: h });
    expect(result.code, result.stderr).toBe(0);
    const { deployed } = json<{ deployed: Array<{ id: string; commit: string }>; failed: unknown[] }>(result);
    expect(deployed.map((d) => d.id)).toEqual([A, B, C].map((u) => `agent-${u}`));
    expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toHaveLength(3);
    expect(await stagingDebris(h)).toEqual([]);

    const runtimeRepo = join(h, '.animus', 'runtime.git');
    const main = await git(['rev-parse', 'main'], runtimeRepo);
    const [pack] = (await readdir(join(runtimeRepo, 'objects', 'pack'))).filter((n) => n.endsWith('.pack'));
    expect(pack).toBeDefined();
    for (const uuid of [A, B, C]) {
      const clone = join(h, `agent-${uuid}`, 'runtime');
      expect(deployed.find((d) => d.id === `agent-${uuid}`)!.commit).toBe(main);
      expect(await git(['rev-parse', 'HEAD'], clone)).toBe(main);
      expect(await git(['status', '--porcelain'], clone)).toBe('');
      expect(await git(['rev-parse', '--abbrev-ref', '@{upstream}'], clone)).toBe('origin/main');
      expect(await git(['config', 'remote.origin.url'], clone)).toBe(runtimeRepo);
      await expect(stat(join(clone, '.git', 'objects', 'info', 'alternates'))).rejects.toThrow();
      // Objects are shared by hardlink with the runtime repo (and so across agents).
      expect((await stat(join(clone, '.git', 'objects', 'pack', pack!))).ino).toBe((await stat(join(runtimeRepo, 'objects', 'pack', pack!))).ino);
    }
    // Independent: a commit in one clone is not seen by another, and losing the source breaks none.
    await writeFile(join(h, `agent-${A}`, 'runtime', 'local.txt'), 'x\n');
    await git(['add', 'local.txt'], join(h, `agent-${A}`, 'runtime'));
    await git(['commit', '-q', '-m', 'local'], join(h, `agent-${A}`, 'runtime'));
    expect(await git(['rev-parse', 'HEAD'], join(h, `agent-${B}`, 'runtime'))).toBe(main);
    await execa('rm', ['-rf', runtimeRepo]);
    for (const uuid of [A, B, C]) expect(await git(['fsck', '--full'], join(h, `agent-${uuid}`, 'runtime'))).toBe('');
  });

  it('fails every agent of a batch whose repository cannot be cloned, once each, with nothing left', async () => {
    const h = join(root, 'home-many-bad');
    const result = await runCli(['deploy', A, B, '--mode', 'echo', '--repo', join(root, 'nope.git'), '--json'], { home: h });
    expect(result.code).toBe(6);
    const out = json<{ deployed: unknown[]; failed: Array<{ code: string }> }>(result);
    expect(out.deployed).toEqual([]);
    expect(out.failed.map((f) => f.code)).toEqual(['EGIT', 'EGIT']);
    expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toEqual([]);
    expect(await stagingDebris(h)).toEqual([]);
  });
});

describe('animus deploy refuses, and leaves nothing behind', () => {
  it.each([
    [['../x'], /contains a path/],
    [[`../agent-${A}`], /contains a path/],
    [['agent-notes'], /not an agent id/],
    [[''], /empty/],
    [[A, A], /named twice/],
    [[A, '--mode', 'loud'], /--mode must be one of echo, listen, live/],
    [[A, '--endpoint', 'not a url', '--api-key', 'k'], /--endpoint "not a url" is not a URL/],
    [[A, '--endpoint', 'ftp://x', '--api-key', 'k'], /must be an http\(s\) URL/],
    [[A, '--mode', 'echo', '--env', 'NOEQUALS'], /not KEY=VALUE/],
    [[A, '--mode', 'echo', '--env', 'AGENT_ID=x'], /AGENT_ID comes from the deployed id/],
    [[A, '--mode', 'echo', '--process-manager', 'supervisord'], /--process-manager must be one of pm2, systemd/],
    // A live agent's id must be one Letta takes: uuid4 (this one is version 7).
    [[B, '--endpoint', 'https://api.letta.com', '--api-key', 'sk-let-4f9a1c2e8b7d'], /Letta agent ids are uuid4 .* this one is version 7/],
  ])('bad input %j: exit 2, one line, no home created', async (args, message) => {
    const h = join(root, `home-bad-${Math.random().toString(36).slice(2)}`);
    const result = await runCli(['deploy', ...args], { home: h });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/at .*\.js:\d+/);
    expect(await entries(h)).toEqual([]);
  });

  it('without a terminal, names the flags that are missing', async () => {
    const h = join(root, 'home-notty');
    const noEndpoint = await runCli(['deploy', A], { home: h });
    expect(noEndpoint.code).toBe(2);
    expect(noEndpoint.stderr).toMatch(/pass --endpoint <url>/);
    const noKey = await runCli(['deploy', A, '--endpoint', 'https://api.letta.com'], { home: h });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/pass --api-key <key> or set AGENT_API_KEY/);
    expect(await entries(h)).toEqual([]);
  });

  it('refuses an agent that exists, by either spelling of its id, and changes nothing', async () => {
    const h = join(root, 'home-exists');
    expect((await runCli(['deploy', A, '--mode', 'echo'], { home: h })).code).toBe(0);
    const envPath = join(h, `agent-${A}`, '.env');
    await writeFile(envPath, 'AGENT_ID=hand-edited\n');
    const old = new Date('2020-01-01T00:00:00Z');
    await utimes(envPath, old, old);
    for (const id of [A, `agent-${A}`, A.toUpperCase()]) {
      const result = await runCli(['deploy', id, '--mode', 'echo'], { home: h });
      expect(result.code).toBe(4);
      expect(result.stderr).toMatch(/already exists.*nothing was changed/);
    }
    expect(await readFile(envPath, 'utf8')).toBe('AGENT_ID=hand-edited\n');
    expect((await stat(envPath)).mtime.getTime()).toBe(old.getTime());
  });

  it('reports the ones that failed when deploying several, and makes the rest', async () => {
    const h = join(root, 'home-partial');
    expect((await runCli(['deploy', B, '--mode', 'echo'], { home: h })).code).toBe(0);
    const result = await runCli(['deploy', A, B, C, '--mode', 'echo', '--json'], { home: h });
    expect(result.code).toBe(4);
    const out = json<{ deployed: Array<{ id: string }>; failed: Array<{ id: string; code: string }> }>(result);
    expect(out.deployed.map((d) => d.id)).toEqual([`agent-${A}`, `agent-${C}`]);
    expect(out.failed).toEqual([expect.objectContaining({ id: `agent-${B}`, code: 'EEXISTS' })]);
  });

  it('refuses an unreachable or missing repository: exit 6, no folder, no staging', async () => {
    const h = join(root, 'home-norepo');
    const result = await runCli(['deploy', A, '--mode', 'echo', '--repo', join(root, 'does-not-exist.git')], { home: h });
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/^animus: cannot clone .*does-not-exist\.git: .*check --repo/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toEqual([]);
    expect(await stagingDebris(h)).toEqual([]);
  });

  it('fails in the middle (clone done, ref missing) and removes the half-made folder', async () => {
    const h = join(root, 'home-badref');
    const source = join(root, 'badref.git');
    await makeBareRepo(source, { 'main.js': '\n' });
    const result = await runCli(['deploy', A, '--mode', 'echo', '--repo', source, '--ref', 'v9.9.9'], { home: h });
    expect(result.code).toBe(6);
    expect(result.stderr).toMatch(/cannot check out "v9.9.9".*check --ref/);
    expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toEqual([]);
    expect(await stagingDebris(h)).toEqual([]);
  });

  it('refuses a malformed --env-file before touching the disk', async () => {
    const h = join(root, 'home-badenvfile');
    const file = join(root, 'bad.env');
    await writeFile(file, 'GOOD=1\nthis line is broken\n');
    const result = await runCli(['deploy', A, '--mode', 'echo', '--env-file', file], { home: h });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/bad\.env line 2 is not KEY=VALUE/);
    expect(await entries(h)).toEqual([]);
  });

  describe('interrupted', () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      // A "git server" that accepts and never answers: the clone hangs until interrupted.
      server = createServer(() => {});
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => {
      server.close();
    });

    async function startHangingDeploy(h: string) {
      const child = execa('node', [BIN, 'deploy', A, '--mode', 'echo', '--repo', `http://127.0.0.1:${port}/runtime.git`], {
        env: cliEnv({ home: h }),
        extendEnv: false,
        reject: false,
      });
      // Wait until the staging folder exists: the deploy is mid-way.
      for (let i = 0; i < 200 && (await stagingDebris(h)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await stagingDebris(h)).toHaveLength(1);
      // Wrapped: a subprocess is thenable, so returning it bare would await its end.
      return { child };
    }

    it('by Ctrl-C: exits 130 and removes its staging folder', async () => {
      const h = join(root, 'home-sigint');
      const { child } = await startHangingDeploy(h);
      child.kill('SIGINT');
      const result = await child;
      expect(result.exitCode).toBe(130);
      expect(result.stderr).toMatch(/interrupted/);
      expect(await stagingDebris(h)).toEqual([]);
      expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toEqual([]);
    });

    it('by SIGKILL: the next deploy removes the debris', async () => {
      const h = join(root, 'home-sigkill');
      const { child } = await startHangingDeploy(h);
      child.kill('SIGKILL');
      await child;
      // git, in its own process group, outlives a SIGKILLed animus: end it as a reboot would.
      await execa('pkill', ['-KILL', '-f', `127.0.0.1:${port}/runtime.git`], { reject: false });
      expect(await stagingDebris(h)).toHaveLength(1);
      const next = await runCli(['deploy', B, '--mode', 'echo'], { home: h });
      expect(next.code, next.stderr).toBe(0);
      expect(await stagingDebris(h)).toEqual([]);
      expect((await entries(h)).filter((n) => n.startsWith('agent-'))).toEqual([`agent-${B}`]);
    });
  });

  it('refuses a home path that is a file', async () => {
    const file = join(root, 'home-is-a-file');
    await writeFile(file, '');
    const result = await runCli(['deploy', A, '--mode', 'echo'], { home: file });
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('names the home, in one line, when the file system refuses it (a file where a folder must be)', async () => {
    const file = join(root, 'not-a-folder');
    await writeFile(file, 'x');
    const result = await runCli(['deploy', A, '--mode', 'echo'], { home: join(file, 'home'), configDir: join(root, 'cfg-notdir'), pm2Home: join(root, 'pm2-notdir') });
    expect(result.code).toBe(6);
    expect(result.stderr).toBe(`animus: cannot prepare the home ${join(file, 'home')}: ENOTDIR: choose another --home or fix its permissions`);
    expect(await readFile(file, 'utf8')).toBe('x');
  });
});
