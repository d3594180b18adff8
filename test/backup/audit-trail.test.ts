import { link, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { reforge } from '../helpers/archives.js';
import { json, oneErrorLine, runCli, type CliResult } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { extractArchive, readManifest } from '../../src/backup/read-archive.js';
import { writeArchive } from '../../src/backup/write-archive.js';
import type { AgentPaths } from '../../src/home/layout.js';

/**
 * The agent's audit trail (`logs/audit.log`) travels with its backups: archived through
 * the safe-open module (no link followed), restored into logs/ at 0600 with the current
 * one kept aside, and an archive naming any other path is refused.
 */
let root: string;
let home: string;

beforeAll(async () => {
  root = await tempDir('animus-audit-backup');
  home = join(root, 'home');
});

const cli = (args: string[]): Promise<CliResult> => runCli(args, { home, timeoutMs: 30_000 });

interface Backup {
  backups: Array<{ archive: string; files: Array<{ name: string }>; notes: string[] }>;
}

async function backupOf(paths: AgentPaths): Promise<Backup['backups'][number]> {
  const result = await cli(['backup', paths.agent.id, '--out', join(root, 'archives'), '--json']);
  expect(result.code, result.stderr).toBe(0);
  return json<Backup>(result).backups[0]!;
}

const auditLines = async (paths: AgentPaths, name = 'audit.log') =>
  (await readFile(join(paths.logs, name), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { command: string; args: string[] });

describe('backups carry the audit trail', () => {
  it('backup → restore brings the audit lines back, 0600 in logs/, and keeps the replaced trail aside', async () => {
    const { paths } = await deployTestAgent(home);
    const id = paths.agent.id;
    expect((await cli(['settings', 'set', id, 'max_retries', '4'])).code).toBe(0);
    expect((await cli(['settings', 'set', id, 'queue_refresh', '2'])).code).toBe(0);
    const backup = await backupOf(paths);
    expect(backup.files.map((f) => f.name)).toContain('logs/audit.log');

    // After the backup: one more record, then the trail is lost.
    expect((await cli(['settings', 'set', id, 'max_retries', '6'])).code).toBe(0);
    const after = await readFile(join(paths.logs, 'audit.log'), 'utf8');
    await rm(join(paths.logs, 'audit.log'));
    await writeFile(join(paths.logs, 'audit.log'), after, { mode: 0o644 });

    const restore = await cli(['restore', id, '--from', backup.archive, '--yes', '--json']);
    expect(restore.code, restore.stderr).toBe(0);
    const done = json<{ restored: string[]; preRestore: string[] }>(restore);
    expect(done.restored).toContain('logs/audit.log');

    const lines = await auditLines(paths);
    // The two records from before the backup, then the restore's own record appended to the restored trail.
    expect(lines.map((l) => `${l.command} ${l.args.slice(-2).join(' ')}`)).toEqual([`settings set max_retries 4`, `settings set queue_refresh 2`, expect.stringMatching(/^restore /)]);
    expect((await stat(join(paths.logs, 'audit.log'))).mode & 0o777).toBe(0o600);
    const kept = done.preRestore.find((path) => path.includes('audit.log.pre-restore-'))!;
    expect(kept.startsWith(paths.logs)).toBe(true);
    expect(await readFile(kept, 'utf8')).toBe(after);
  });

  it('a symlinked (or hard-linked) audit.log is not followed: the backup succeeds without it and says so', async () => {
    const { paths } = await deployTestAgent(home);
    const secret = join(root, 'elsewhere.log');
    await writeFile(secret, '{"time":"2026-01-01T00:00:00Z","command":"not this agent\'s"}\n');
    await mkdir(paths.logs, { recursive: true });
    await symlink(secret, join(paths.logs, 'audit.log'));

    const result = await cli(['backup', paths.agent.id, '--out', join(root, 'archives')]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/logs\/audit\.log not archived: .*audit\.log is a symbolic link/);
    const listed = await readdir(join(root, 'archives', paths.agent.id));
    const { manifest } = await readManifest(join(root, 'archives', paths.agent.id, listed.sort().at(-1)!));
    expect(manifest.files.map((f) => f.name)).not.toContain('logs/audit.log');

    await rm(join(paths.logs, 'audit.log'));
    await link(secret, join(paths.logs, 'audit.log'));
    const hard = json<Backup>(await cli(['backup', paths.agent.id, '--out', join(root, 'archives-hard'), '--json'])).backups[0]!;
    expect(hard.files.map((f) => f.name)).not.toContain('logs/audit.log');
    expect(hard.notes.join('\n')).toMatch(/logs\/audit\.log not archived: .* has 2 hard links/);
  });

  it('a restore into an agent whose logs/ links elsewhere writes nothing there and says so', async () => {
    const { paths } = await deployTestAgent(home);
    expect((await cli(['settings', 'set', paths.agent.id, 'max_retries', '4'])).code).toBe(0);
    const backup = await backupOf(paths);
    const outside = join(root, 'outside-logs');
    await mkdir(outside);
    await rm(paths.logs, { recursive: true });
    await symlink(outside, paths.logs);

    const restore = await cli(['restore', paths.agent.id, '--from', backup.archive, '--yes', '--json']);
    expect(restore.code, restore.stderr).toBe(0);
    expect(json<{ restored: string[]; notes: string[] }>(restore)).toMatchObject({ restored: ['animus.db', '.env', 'settings.json'], notes: [expect.stringMatching(/logs\/audit\.log not restored: .*logs is a symbolic link/)] });
    expect(await readdir(outside)).toEqual([]);
  });

  it.each([
    ['a parent folder', '../.env'],
    ['an absolute path', '/etc/cron.d/animus'],
    ['a deeper path', 'logs/old/audit.log'],
    ['a dot-dot inside', 'logs/../.env'],
    ['a name animus does not archive', 'logs/runtime.log'],
  ])('an archive with an entry naming %s is refused in one line, nothing changed', async (_, name) => {
    const { paths } = await deployTestAgent(home);
    const good = await readFile((await backupOf(paths)).archive);
    const crafted = join(root, `crafted-${name.replace(/\W/g, '_')}.animus-backup`);
    await writeFile(crafted, reforge(good, (m) => ({ ...m, files: m.files.map((f: { name: string }) => (f.name === '.env' ? { ...f, name } : f)) })));
    const before = await readFile(paths.env);
    for (const args of [['backup', 'verify', crafted], ['restore', paths.agent.id, '--from', crafted, '--yes']]) {
      const line = oneErrorLine(await cli(args), 5);
      expect(line).toContain(`invalid manifest (file entry "${name}"`);
    }
    expect((await readFile(paths.env)).equals(before)).toBe(true);
    await expect(stat(join(root, 'home', '.env'))).rejects.toThrow();
  });

  it('an archive of format 2 (no audit trail) still verifies and restores, and leaves the trail as it is', async () => {
    const { paths } = await deployTestAgent(home);
    expect((await cli(['settings', 'set', paths.agent.id, 'max_retries', '4'])).code).toBe(0);
    const current = await backupOf(paths);
    const work = join(root, `v2-${paths.agent.uuid}`);
    await mkdir(work);
    const { manifest, files } = await extractArchive(current.archive, work);
    const { files: _files, bodyBytes: _bytes, encrypted: _enc, ...base } = manifest;
    const old = join(root, `${paths.agent.id}_v2.animus-backup`);
    await writeArchive(old, { ...base, formatVersion: 2 }, (['animus.db', '.env', 'settings.json'] as const).map((name) => ({ name, path: files[name]!, mode: 0o600 })));
    expect((await readManifest(old)).manifest.formatVersion).toBe(2);

    const verify = await cli(['backup', 'verify', old, '--json']);
    expect(verify.code, verify.stderr).toBe(0);
    const trail = await readFile(join(paths.logs, 'audit.log'), 'utf8');
    const restore = await cli(['restore', paths.agent.id, '--from', old, '--yes', '--json']);
    expect(restore.code, restore.stderr).toBe(0);
    expect(json<{ restored: string[] }>(restore).restored).toEqual(['animus.db', '.env', 'settings.json']);
    expect((await readFile(join(paths.logs, 'audit.log'), 'utf8')).startsWith(trail)).toBe(true);
  });
});
