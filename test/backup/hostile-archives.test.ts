import { execa } from 'execa';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { editManifestText, expectOneLine, reforge } from '../helpers/archives.js';
import { runCli } from '../helpers/cli.js';
import { commitToBare, git } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { backupAgent } from '../../src/backup/create-backup.js';
import { deriveNewKey } from '../../src/backup/cipher.js';
import { extractArchive, readManifest } from '../../src/backup/read-archive.js';
import { writeArchive } from '../../src/backup/write-archive.js';
import { homeLayout, type AgentPaths } from '../../src/home/layout.js';

/**
 * Archives made to hurt (crafted manifests, special files, another agent's data) and
 * the mistakes people make with paths: each is refused in one line with the
 * documented exit code (5 malformed, 3 missing), never 70, never a hang.
 */
const PASSPHRASE = 'correct horse battery staple';

let root: string;
let home: string;
let a: AgentPaths;
let b: AgentPaths;
let plain: Buffer;
let encrypted: Buffer;
let plainOfB: string;

beforeAll(async () => {
  root = await tempDir('hostile');
  home = join(root, 'home');
  a = (await deployTestAgent(home)).paths;
  b = (await deployTestAgent(home)).paths;
  plain = await readFile((await backupAgent(a, { outDir: join(root, 'good') })).archive);
  encrypted = await readFile((await backupAgent(a, { outDir: join(root, 'good-enc'), key: await deriveNewKey(PASSPHRASE) })).archive);
  plainOfB = (await backupAgent(b, { outDir: join(root, 'good-b') })).archive;
});

let n = 0;
async function place(data: Buffer | string): Promise<string> {
  const path = join(root, `crafted-${n++}.animus-backup`);
  await writeFile(path, data);
  return path;
}

/** verify and restore both refuse it, one line, this exit code, and the agent's files stay as they were. */
async function expectRefused(path: string, code: number, message: RegExp): Promise<void> {
  const before = await readFile(a.db);
  const env = { ANIMUS_BACKUP_PASSPHRASE: PASSPHRASE };
  for (const args of [['backup', 'verify', path], ['restore', a.agent.id, '--from', path, '--yes']]) {
    const result = await runCli(args, { home, env, timeoutMs: 20_000 });
    expect(result.code, `${args.join(' ')}\n${result.stderr}`).toBe(code);
    expectOneLine(result.stderr);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain('\u001b');
  }
  expect((await readFile(a.db)).equals(before)).toBe(true);
  expect(await readdirOrEmpty(homeLayout(home).stagingDir)).toEqual([]);
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir).catch(() => []);
}

describe('hostile archives', () => {
  it('a folder, a FIFO, a missing file and an unfinished .partial', async () => {
    const folder = join(root, 'a-folder.animus-backup');
    await mkdir(folder);
    await expectRefused(folder, 5, /is a folder, not an archive file/);
    const fifo = join(root, 'a-fifo.animus-backup');
    await execa('mkfifo', [fifo]);
    await expectRefused(fifo, 5, /is a FIFO, not an archive file/);
    await expectRefused(join(root, 'nothing-here.animus-backup'), 3, /does not exist/);
    const partial = join(root, `x.animus-backup.${process.pid}.partial`);
    await writeFile(partial, plain);
    await expectRefused(partial, 5, /unfinished archive left by an interrupted backup/);
  });

  it.each([
    ['"clone": null', (m: Record<string, any>) => ({ ...m, clone: null }), /invalid manifest \(clone\)/],
    ['a duplicate entry', (m: Record<string, any>) => ({ ...m, files: [m.files[0], m.files[1], m.files[1]], bodyBytes: m.files[0].size + 2 * m.files[1].size }), /\.env listed twice/],
    ['a wrong-typed size', (m: Record<string, any>) => ({ ...m, bodyBytes: String(m.bodyBytes) }), /invalid manifest \(sizes\)/],
    ['an agent id that is a path', (m: Record<string, any>) => ({ ...m, agentId: '../../etc' }), /invalid manifest \(agent id\)/],
    ['terminal escapes in the origin', (m: Record<string, any>) => ({ ...m, clone: { ...m.clone, origin: '\u001b]0;pwned\u0007\u001b[2J/evil' } }), /invalid manifest \(clone origin\)/],
    ['a database with no rows recorded', (m: Record<string, any>) => ({ ...m, database: undefined }), /invalid manifest \(database\)/],
  ])('a plain manifest with %s', async (_, edit, message) => {
    await expectRefused(await place(reforge(plain, edit)), 5, message);
  });

  it.each([
    ['N: 3', { N: 3 }],
    ['N: "x"', { N: 'x' }],
    ['N = 2^20, r = 16 (seconds and gigabytes for a wrong passphrase)', { N: 2 ** 20, r: 16 }],
    ['p: 4', { p: 4 }],
  ])('scrypt %s is refused before any key is derived', async (_, cost) => {
    await expectRefused(await place(reforge(encrypted, (m) => ({ ...m, encryption: { ...m.encryption, ...cost } }))), 5, /scrypt parameters beyond what animus writes/);
  });

  it.each([
    ['iv: ""', { iv: '' }, /\(iv\)/],
    ['a short salt', { salt: 'AAAA' }, /\(salt\)/],
    ['no key check', { keyCheck: 7 }, /\(key check\)/],
  ])('encryption with %s', async (_, change, message) => {
    await expectRefused(await place(reforge(encrypted, (m) => ({ ...m, encryption: { ...m.encryption, ...change } }))), 5, message);
  });

  it('bytes flipped in the commit, origin, time or mode of a plain manifest', async () => {
    const { manifest } = await readManifest(join(root, 'good', a.agent.id, (await readdirOrEmpty(join(root, 'good', a.agent.id)))[0]!));
    const commit = manifest.clone.commit!;
    const flips: Array<[string, string]> = [
      [commit, `${commit[0] === 'a' ? 'b' : 'a'}${commit.slice(1)}`],
      [`"origin":"${manifest.clone.origin!}"`, `"origin":"${manifest.clone.origin!.slice(0, -1)}X"`],
      [manifest.createdAt, manifest.createdAt.replace(/^\d{4}/, '1999')],
      ['"mode":384', '"mode":511'],
    ];
    for (const [from, to] of flips) await expectRefused(await place(editManifestText(plain, from, to)), 5, /does not match its checksum/);
  });

  it("another agent's database relabelled, whatever stamp the forger records", async () => {
    const work = join(root, 'b-files');
    await mkdir(work);
    const { manifest: ofB, files } = await extractArchive(plainOfB, work);
    const { manifest: ofA } = await readManifest(await place(plain));
    for (const applicationId of [ofA.database!.applicationId, ofB.database!.applicationId]) {
      const crafted = join(root, `relabelled-${applicationId}.animus-backup`);
      const { files: _files, bodyBytes: _bytes, encrypted: _enc, ...base } = ofA;
      await writeArchive(crafted, { ...base, database: { rows: ofB.database!.rows, applicationId } }, [{ name: 'animus.db', path: files['animus.db']!, mode: 0o600 }]);
      await expectRefused(crafted, 5, /is not agent-[0-9a-f-]+'s \(its agent stamp differs/);
    }
  });

  it('a 0-byte database, a SQLite file with none of the four tables, an emptied database', async () => {
    const { manifest } = await readManifest(await place(plain));
    const { files: _f, bodyBytes: _b, encrypted: _e, ...base } = manifest;
    const zero = join(root, 'zero.animus-backup');
    await writeArchive(zero, base, [{ name: 'animus.db', data: Buffer.alloc(0), mode: 0o600 }]);
    await expectRefused(zero, 5, /empty \(0 bytes\)/);

    const other = join(root, 'other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)');
    db.close();
    const tableless = join(root, 'tableless.animus-backup');
    await writeArchive(tableless, base, [{ name: 'animus.db', data: await readFile(other), mode: 0o600 }]);
    await expectRefused(tableless, 5, /has none of Broca's tables: it is not an agent's database/);

    // The agent's own database with every row deleted (and its stamp kept): the manifest says it had rows.
    const emptied = join(root, 'emptied.db');
    await writeFile(emptied, await readFile(a.db));
    const handle = new Database(emptied);
    handle.exec('DELETE FROM queue; DELETE FROM messages; DELETE FROM platform_profiles; DELETE FROM letta_users;');
    handle.pragma(`application_id = ${manifest.database!.applicationId}`);
    handle.close();
    const withRows = { ...base, database: { ...manifest.database!, rows: { ...manifest.database!.rows, messages: 3 } } };
    const hollow = join(root, 'hollow.animus-backup');
    await writeArchive(hollow, withRows, [{ name: 'animus.db', data: await readFile(emptied), mode: 0o600 }]);
    await expectRefused(hollow, 5, /has 0 rows in messages where its manifest records 3/);
  });

  it('backup list and verify print no terminal escape from a file name', async () => {
    const dir = join(root, 'escapes', a.agent.id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${a.agent.id}_\u001b[2J\u001b]0;x\u0007.animus-backup`), 'junk');
    const list = await runCli(['backup', 'list', '--dir', join(root, 'escapes')], { home });
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout + list.stderr).not.toContain('\u001b');
    expect(list.stdout).toMatch(/not an animus backup archive/);
  });
});

describe('paths people pass', () => {
  it('backup --out /proc, a file, or under a file fails at once in one line', async () => {
    await writeFile(join(root, 'plain-file'), 'x');
    for (const out of ['/proc', join(root, 'plain-file'), join(root, 'plain-file', 'below')]) {
      const result = await runCli(['backup', a.agent.id, '--out', out], { home, timeoutMs: 20_000 });
      expect(result.code, result.stderr).toBe(6);
      expectOneLine(result.stderr);
      expect(result.stderr).toMatch(/cannot use .* for backups .*: pass --out with a folder you can write/);
    }
  });
});

describe('restore never runs code from an origin it was not told to trust', () => {
  it('recreates from the home runtime with a note, and from the recorded origin only with --trust-origin', async () => {
    // An "evil" repository: the home's runtime plus a commit of someone else's.
    const evil = join(root, 'evil.git');
    await git(['clone', '--quiet', '--bare', homeLayout(home).runtimeRepo, evil], root);
    const evilCommit = await commitToBare(evil, { 'EVIL.md': 'someone else ran this\n' }, 'evil');
    const c = (await deployTestAgent(home)).paths;
    const archive = await readFile((await backupAgent(c, { outDir: join(root, 'of-c') })).archive);
    const forged = await place(reforge(archive, (m) => ({ ...m, clone: { ...m.clone, origin: evil, commit: evilCommit } })));

    await rm(c.dir, { recursive: true, force: true });
    const result = await runCli(['restore', c.agent.id, '--from', forged, '--yes'], { home });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`it will be recreated with the runtime from ${homeLayout(home).runtimeRepo.replace(/[/.]/g, '\\$&')}`));
    expect(result.stderr).toMatch(/names .*evil\.git as the runtime's origin, which is neither this home's runtime nor the configured runtimeRepo/);
    expect(await git(['remote', 'get-url', 'origin'], c.clone)).toBe(homeLayout(home).runtimeRepo);
    await expect(readFile(join(c.clone, 'EVIL.md'))).rejects.toThrow();

    await rm(c.dir, { recursive: true, force: true });
    const trusted = await runCli(['restore', c.agent.id, '--from', forged, '--yes', '--trust-origin', '--json'], { home });
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(JSON.parse(trusted.stdout)).toMatchObject({ recreated: true, origin: evil });
    expect(await git(['rev-parse', 'HEAD'], c.clone)).toBe(evilCommit);
  });
});
