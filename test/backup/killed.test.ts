import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { killMidway as killMidwayIn } from '../helpers/kill-midway.js';
import { tempDir } from '../helpers/temp.js';
import { homeLayout, type AgentPaths } from '../../src/home/layout.js';

/**
 * backup, verify and restore SIGKILLed mid-way, as real CLI processes: what each
 * leaves behind is removed by the next run of the same command and by `animus init`,
 * a `.partial` is never taken for an archive, and a killed restore changes nothing.
 * "Mid-way" is found, not timed (helpers/kill-midway.ts): a `.partial` being written,
 * a staging folder holding the extracted database.
 */
let root: string;
let home: string;
let a: AgentPaths;
const killMidway = (args: string[], caught: () => boolean) => killMidwayIn(args, { home }, caught);

beforeAll(async () => {
  root = await tempDir('killed');
  home = join(root, 'home');
  a = (await deployTestAgent(home)).paths;
  // About 40 MiB of messages: long enough to write and check that the child can be caught at it.
  const db = new Database(a.db);
  db.exec("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO messages (role, message, timestamp) SELECT 'user', hex(randomblob(4000)), datetime('now') FROM n");
  db.close();
}, 60_000);

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function staging(label: string): string[] {
  return list(homeLayout(home).stagingDir).filter((name) => name.startsWith(`${label}.`) || name.startsWith(`${label}-`));
}

function stagedDatabase(label: string): boolean {
  return staging(label).some((name) => existsSync(join(homeLayout(home).stagingDir, name, 'animus.db')));
}

async function sha(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('killed in the middle', () => {
  let archive: string;

  it('backup: the .partial is never an archive, and the next backup and init remove it', async () => {
    const out = join(root, 'out');
    const dir = join(out, a.agent.id);
    const partials = () => list(dir).filter((name) => name.endsWith('.partial'));
    await killMidway(['backup', a.agent.id, '--out', out], () => partials().length > 0);
    const [partial] = partials();
    expect(list(dir).filter((name) => name.endsWith('.animus-backup'))).toEqual([]);

    const taken = await runCli(['restore', a.agent.id, '--from', join(dir, partial!), '--yes'], { home });
    expect(taken.code).toBe(5);
    expect(taken.stderr).toMatch(/unfinished archive left by an interrupted backup/);

    const next = await runCli(['backup', a.agent.id, '--out', out, '--json'], { home });
    expect(next.code, next.stderr).toBe(0);
    expect(partials()).toEqual([]);
    archive = json<{ backups: Array<{ archive: string }> }>(next).backups[0]!.archive;
    expect(list(dir)).toEqual([archive.split('/').pop()]);

    // In the home's own backups folder, `animus init` removes it too.
    const own = join(homeLayout(home).backupsDir, a.agent.id);
    await killMidway(['backup', a.agent.id], () => list(own).some((name) => name.endsWith('.partial')));
    expect((await runCli(['init'], { home })).code).toBe(0);
    expect(list(own).filter((name) => name.endsWith('.partial'))).toEqual([]);
  }, 180_000);

  it("verify: its private copy (users' messages) stays inside the home, 0700, and the next verify and init remove it", async () => {
    await killMidway(['backup', 'verify', archive], () => stagedDatabase('verify'));
    const [left] = staging('verify');
    const folder = join(homeLayout(home).stagingDir, left!);
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(list('/tmp').filter((name) => name.startsWith('animus-verify-'))).toEqual([]);

    const next = await runCli(['backup', 'verify', archive], { home });
    expect(next.code, next.stderr).toBe(0);
    expect(staging('verify')).toEqual([]);

    await killMidway(['backup', 'verify', archive], () => stagedDatabase('verify'));
    expect(staging('verify')).toHaveLength(1);
    expect((await runCli(['init'], { home })).code).toBe(0);
    expect(staging('verify')).toEqual([]);
  }, 180_000);

  it('restore: nothing is half-restored, and the next restore removes the staging folder and completes', async () => {
    const before = { db: await sha(a.db), env: await sha(a.env), settings: await sha(a.settings) };
    const db = new Database(a.db);
    db.prepare("INSERT INTO messages (role, message, timestamp) VALUES ('user', 'after the backup', datetime('now'))").run();
    db.close();
    const changed = await sha(a.db);
    await killMidway(['restore', a.agent.id, '--from', archive, '--yes', '--no-start'], () => stagedDatabase('restore'));
    expect(staging('restore')).toHaveLength(1);
    expect({ db: await sha(a.db), env: await sha(a.env), settings: await sha(a.settings) }).toEqual({ ...before, db: changed });
    expect(list(a.dir).filter((name) => name.includes('pre-restore'))).toEqual([]);

    const next = await runCli(['restore', a.agent.id, '--from', archive, '--yes', '--no-start'], { home });
    expect(next.code, next.stderr).toBe(0);
    expect(staging('restore')).toEqual([]);
    expect(await sha(a.db)).not.toBe(changed);
  }, 180_000);
});
