import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import type { AgentPaths } from '../../src/home/layout.js';

let root: string;
let home: string;
let a: AgentPaths;
let b: AgentPaths;

interface BackupOutput {
  outDir: string;
  backups: Array<{ id: string; archive: string; encrypted: boolean; files: Array<{ name: string; sha256: string }> }>;
  failed: unknown[];
}

beforeAll(async () => {
  root = await tempDir('backup-cli');
  home = join(root, 'home');
  a = (await deployTestAgent(home)).paths;
  b = (await deployTestAgent(home)).paths;
});

async function sha(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

function oneLineError(result: { stderr: string }): void {
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^animus: /);
  expect(result.stderr).not.toMatch(/\bat .+:\d+:\d+/);
}

describe('animus backup / restore', () => {
  let archiveOfA: string;

  it('refuses an --out that is not a folder, in one line, and writes nothing', async () => {
    const file = join(root, 'out-is-a-file');
    await writeFile(file, 'x');
    const result = await runCli(['backup', a.agent.id, '--out', file], { home });
    expect(result.code).toBe(6);
    oneLineError(result);
    expect(result.stderr).toMatch(/cannot use .*out-is-a-file for backups \(not a folder\): pass --out/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('backs up every agent into <home>/backups/<id>/, lists and verifies the archives', async () => {
    const result = await runCli(['backup', '--all', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const out = json<BackupOutput>(result);
    expect(out.outDir).toBe(join(home, 'backups'));
    expect(out.backups.map((x) => x.id).sort()).toEqual([a.agent.id, b.agent.id].sort());
    expect(out.failed).toEqual([]);
    archiveOfA = out.backups.find((x) => x.id === a.agent.id)!.archive;
    expect((await stat(archiveOfA)).mode & 0o777).toBe(0o600);
    // a's refused backup above left a record in its audit trail, which its archive carries; b has none yet.
    const names = (id: string) => out.backups.find((x) => x.id === id)!.files.map((f) => f.name);
    expect(names(a.agent.id)).toEqual(['animus.db', '.env', 'settings.json', 'logs/audit.log']);
    expect(names(b.agent.id)).toEqual(['animus.db', '.env', 'settings.json']);

    const list = await runCli(['backup', 'list', a.agent.id, '--json'], { home });
    expect(list.code, list.stderr).toBe(0);
    expect(json<Array<{ archive: string; agentId: string; encrypted: boolean }>>(list)).toEqual([expect.objectContaining({ archive: archiveOfA, agentId: a.agent.id, encrypted: false })]);

    const verify = await runCli(['backup', 'verify', archiveOfA, '--json'], { home });
    expect(verify.code, verify.stderr).toBe(0);
    expect(json(verify)).toMatchObject({ ok: true, integrityCheck: 'ok', agentId: a.agent.id });
  });

  it('refuses a tampered archive in verify and restore, with one line and nothing changed', async () => {
    const tampered = join(root, 'tampered.animus-backup');
    const data = await readFile(archiveOfA);
    data[data.length - 100]! ^= 0x20;
    await writeFile(tampered, data);
    const verify = await runCli(['backup', 'verify', tampered], { home });
    expect(verify.code).toBe(5);
    oneLineError(verify);
    const before = await sha(a.db);
    const restore = await runCli(['restore', a.agent.id, '--from', tampered, '--yes'], { home });
    expect(restore.code).toBe(5);
    oneLineError(restore);
    expect(await sha(a.db)).toBe(before);
    expect((await readdir(a.dir)).filter((n) => n.includes('pre-restore'))).toEqual([]);
  });

  it('refuses a foreign archive and asks for --yes off a terminal', async () => {
    const foreign = await runCli(['restore', b.agent.id, '--from', archiveOfA, '--yes'], { home });
    expect(foreign.code).toBe(5);
    expect(foreign.stderr).toContain(`is a backup of ${a.agent.id}, not ${b.agent.id}`);
    const unconfirmed = await runCli(['restore', a.agent.id, '--from', archiveOfA], { home });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('pass --yes');
  });

  it('restores with --yes and reports what it did', async () => {
    const result = await runCli(['restore', a.agent.id, '--from', archiveOfA, '--yes', '--json'], { home, pm2Home: `${home}.pm2-restore` });
    expect(result.code, result.stderr).toBe(0);
    expect(json(result)).toMatchObject({ id: a.agent.id, recreated: false, restored: ['animus.db', '.env', 'settings.json', 'logs/audit.log'], process: { stopped: 'was-not-running', started: 'skipped' } });
  });

  it('encrypts with the passphrase from the environment, and refuses to guess one', async () => {
    const env = { ANIMUS_BACKUP_PASSPHRASE: 'a long enough passphrase' };
    const noPass = await runCli(['backup', a.agent.id, '--encrypt', '--out', join(root, 'enc')], { home });
    expect(noPass.code).toBe(2);
    oneLineError(noPass);
    expect(noPass.stderr).toContain('ANIMUS_BACKUP_PASSPHRASE');
    expect(await readdir(join(root, 'enc')).catch(() => [])).toEqual([]);

    const made = await runCli(['backup', a.agent.id, '--encrypt', '--out', join(root, 'enc'), '--json'], { home, env });
    expect(made.code, made.stderr).toBe(0);
    const archive = json<BackupOutput>(made).backups[0]!.archive;
    expect(made.stdout).not.toContain(env.ANIMUS_BACKUP_PASSPHRASE);
    expect((await runCli(['backup', 'verify', archive], { home, env })).code).toBe(0);
    const wrong = await runCli(['backup', 'verify', archive], { home, env: { ANIMUS_BACKUP_PASSPHRASE: 'not it at all' } });
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toMatch(/wrong passphrase/);
  });

  it('prunes with --keep and refuses bad flags', async () => {
    const dir = join(root, 'keep');
    for (let i = 0; i < 3; i++) expect((await runCli(['backup', b.agent.id, '--out', dir, '--keep', '2'], { home })).code).toBe(0);
    expect(await readdir(join(dir, b.agent.id))).toHaveLength(2);
    for (const args of [['backup', '--all', '--keep', '0'], ['backup'], ['backup', a.agent.id, '--all']]) {
      const result = await runCli(args, { home });
      expect(result.code, args.join(' ')).toBe(2);
      oneLineError(result);
    }
  });
});
