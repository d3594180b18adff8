import { chmod, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { git, makeBareRepo } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const UUID = '721679f6-c8af-4e01-8677-dc042dc80368';
const GUIDE_ENV = `AGENT_ENDPOINT=https://letta.internal/v1
AGENT_API_KEY=sk-let-hand-made-4f9a1c2e8b7d
MESSAGE_MODE=listen
QUEUE_REFRESH=5
MAX_RETRIES=4
DEBUG_MODE=false
TELEGRAM_BOT_TOKEN=7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q
`;
const GUIDE_SETTINGS = {
  agent: { id: UUID, name: 'My Agent', description: 'Agent for specific tasks' },
  message_processing: { mode: 'live', queue_refresh: 5, max_retries: 3 },
  plugins: { telegram: { enabled: true, parse_mode: 'MarkdownV2' } },
};

interface Report {
  id: string;
  changes: string[];
  warnings: string[];
  error?: string;
}

let root: string;
let home: string;
let dir: string;

/** An agent folder exactly as the guide's manual steps leave it. */
async function makeGuideFolder(): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(dir, 0o755);
  const broca = join(root, `broca-${Math.random().toString(36).slice(2)}.git`);
  await makeBareRepo(broca, { 'main.py': 'print("broca")\n', 'requirements.txt': 'telethon\n' });
  await git(['clone', '--quiet', broca, join(dir, 'broca')], root);
  await writeFile(join(dir, '.env'), GUIDE_ENV, { mode: 0o644 });
  await chmod(join(dir, '.env'), 0o644);
  await writeFile(join(dir, 'settings.json'), JSON.stringify(GUIDE_SETTINGS, null, 2));
  makeBrocaDatabase(join(dir, 'broca', 'sanctum.db'));
}

beforeEach(async () => {
  root = await tempDir('adopt');
  home = join(root, 'home');
  dir = join(home, `agent-${UUID}`);
  await makeGuideFolder();
});

describe('animus adopt', () => {
  it('reports what it would change and changes nothing without --apply', async () => {
    const envBefore = await readFile(join(dir, '.env'), 'utf8');
    const result = await runCli(['adopt', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const [report] = json<Report[]>(result);
    expect(report!.id).toBe(`agent-${UUID}`);
    expect(report!.changes.join('\n')).toMatch(/mode 0700[\s\S]*\.env to mode 0600[\s\S]*AGENT_ID[\s\S]*settings\.json[\s\S]*broca\/sanctum\.db into animus\.db[\s\S]*logs\/[\s\S]*runtime\//);
    expect(report!.warnings.join('\n')).toMatch(/stop the Python Broca process/);
    expect((await stat(dir)).mode & 0o777).toBe(0o755);
    expect(await readFile(join(dir, '.env'), 'utf8')).toBe(envBefore);
    await expect(stat(join(dir, 'animus.db'))).rejects.toThrow();
    await expect(stat(join(dir, 'logs'))).rejects.toThrow();
  });

  it('with --apply makes the folder an animus agent without changing data or .env values', async () => {
    const result = await runCli(['adopt', `agent-${UUID}`, '--apply', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const [report] = json<Report[]>(result);
    expect(report!.error).toBeUndefined();

    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, '.env'))).mode & 0o777).toBe(0o600);
    // Every original line is still there, byte for byte; AGENT_ID was added.
    const env = await readFile(join(dir, '.env'), 'utf8');
    for (const line of GUIDE_ENV.trim().split('\n')) expect(env).toContain(`${line}\n`);
    expect(env).toContain(`AGENT_ID=agent-${UUID}\n`);

    const settings = JSON.parse(await readFile(join(dir, 'settings.json'), 'utf8'));
    expect(settings).toMatchObject({
      agent: { id: `agent-${UUID}`, name: 'My Agent', description: 'Agent for specific tasks' },
      message_mode: 'live',
      queue_refresh: 5,
      max_retries: 3,
      plugins: { telegram_bot: { enabled: true, parse_mode: 'MarkdownV2' } },
    });
    expect(JSON.parse(await readFile(join(dir, 'settings.json.pre-adopt'), 'utf8'))).toEqual(GUIDE_SETTINGS);

    // The Broca database is copied (the original is untouched) and migrated; rows are the same.
    const original = new Database(join(dir, 'broca', 'sanctum.db'), { readonly: true });
    const adopted = new Database(join(dir, 'animus.db'), { readonly: true });
    for (const table of ['letta_users', 'platform_profiles', 'messages', 'queue']) {
      const columns = (original.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name).join(', ');
      expect(adopted.prepare(`SELECT ${columns} FROM ${table} ORDER BY id`).all()).toEqual(original.prepare(`SELECT ${columns} FROM ${table} ORDER BY id`).all());
    }
    expect(original.pragma('user_version', { simple: true })).toBe(0);
    expect(adopted.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    original.close();
    adopted.close();

    expect((await stat(join(dir, 'logs'))).isDirectory()).toBe(true);
    expect(await readFile(join(dir, 'broca', 'main.py'), 'utf8')).toBe('print("broca")\n');
    expect(await git(['rev-parse', 'HEAD'], join(dir, 'runtime'))).toMatch(/^[0-9a-f]{40}$/);

    // Now it is an ordinary agent: list shows no problem, a second adopt has nothing to do.
    const list = json<Array<{ id: string; problems: string[]; mode: string }>>(await runCli(['list', '--json'], { home }));
    expect(list).toEqual([expect.objectContaining({ id: `agent-${UUID}`, problems: [], mode: 'live' })]);
    const again = json<Report[]>(await runCli(['adopt', '--json'], { home }));
    expect(again[0]!.changes).toEqual([]);
  });

  it('carries settings kept in the .env into a new settings.json', async () => {
    await rm(join(dir, 'settings.json'));
    const result = await runCli(['adopt', '--apply', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const settings = JSON.parse(await readFile(join(dir, 'settings.json'), 'utf8'));
    expect(settings).toMatchObject({ message_mode: 'listen', queue_refresh: 5, max_retries: 4, debug_mode: false });
  });

  it('refuses a folder with a malformed .env and changes nothing in it', async () => {
    await writeFile(join(dir, '.env'), 'AGENT_API_KEY=x\nnot an assignment\n');
    const result = await runCli(['adopt', '--apply', '--json'], { home });
    expect(result.code).toBe(5);
    const [report] = json<Report[]>(result);
    expect(report!.error).toMatch(/line 2 is not KEY=VALUE/);
    expect(report!.changes).toEqual([]);
    expect((await stat(dir)).mode & 0o777).toBe(0o755);
    expect(await readFile(join(dir, '.env'), 'utf8')).toBe('AGENT_API_KEY=x\nnot an assignment\n');
    await expect(stat(join(dir, 'animus.db'))).rejects.toThrow();
  });

  it('refuses a corrupt Broca database before changing anything', async () => {
    await writeFile(join(dir, 'broca', 'sanctum.db'), 'this is not sqlite at all, just text '.repeat(200));
    const result = await runCli(['adopt', '--apply', '--json'], { home });
    expect(result.code).toBe(5);
    const [report] = json<Report[]>(result);
    expect(report!.error).toMatch(/not a SQLite database or is corrupt/);
    expect((await stat(dir)).mode & 0o777).toBe(0o755);
    await expect(stat(join(dir, 'animus.db'))).rejects.toThrow();
  });

  it('says what is wrong with a folder that is not named after an agent', async () => {
    await mkdir(join(home, 'agent-notes'));
    const reports = json<Report[]>(await runCli(['adopt', '--json'], { home }));
    expect(reports.find((r) => r.id === 'agent-notes')?.error).toMatch(/not agent-<uuid>/);
  });

  it('refuses a bad id', async () => {
    const result = await runCli(['adopt', '../etc'], { home });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/contains a path/);
  });
});
