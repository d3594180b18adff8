import Database from 'better-sqlite3';
import { build } from 'esbuild';
import { execa, type ResultPromise } from 'execa';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { tempDir } from '../helpers/temp.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** x86-64 numbers of the calls SQLite's busy handler sleeps in (node's own loop waits in epoll). */
const SLEEPS = new Set([35, 230]);

/** The syscall a process's main thread is in now (-1 when running, undefined when gone). */
async function syscallOf(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/syscall`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return text.startsWith('running') ? -1 : Number(text.split(' ')[0]);
}

describe('schema migration by two processes at once', () => {
  // The wait below reads syscall numbers, which are x86-64's.
  it.skipIf(process.arch !== 'x64')('applies each step once when two processes open an old database together: neither fails with "duplicate column"', async () => {
    const dir = await tempDir('migrate-race');
    const path = join(dir, 'animus.db');
    makeBrocaDatabase(path);
    // An old database in WAL mode, as an earlier animus left it: readers never wait for the writer below.
    const holder = new Database(path);
    holder.pragma('journal_mode = WAL');
    // A process that opens the agent database as the runtime and every writing command do;
    // bundled beside node_modules so that better-sqlite3 resolves as it does for animus.
    const bundle = join(ROOT, 'node_modules', '.cache', `migrate-race-${process.pid}.mjs`);
    await build({
      stdin: { contents: `import { openDatabase } from ${JSON.stringify(join(ROOT, 'src/store/database.ts'))}; const db = openDatabase(process.argv[2]); console.log(db.pragma('user_version', { simple: true })); db.close();`, resolveDir: ROOT, loader: 'ts' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outfile: bundle,
      logLevel: 'silent',
    });
    onTestFinished(() => rm(bundle, { force: true }));
    // Hold the write lock while both read the version and reach their first migration step.
    holder.prepare('BEGIN IMMEDIATE').run();
    const children: ResultPromise[] = [execa('node', [bundle, path], { reject: false }), execa('node', [bundle, path], { reject: false })];
    try {
      for (let i = 0; i < 600; i++) {
        const calls = await Promise.all(children.map((child) => syscallOf(child.pid!)));
        if (calls.every((call) => call !== undefined && SLEEPS.has(call))) break;
        if (calls.some((call) => call === undefined)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      holder.prepare('ROLLBACK').run();
    }
    const results = await Promise.all(children);
    for (const result of results) expect(result.stderr).toBe('');
    expect(results.map((result) => [result.exitCode, result.stdout])).toEqual([
      [0, String(SCHEMA_VERSION)],
      [0, String(SCHEMA_VERSION)],
    ]);
    const columns = (holder.pragma('table_info(queue)') as Array<{ name: string }>).map((c) => c.name);
    expect(columns.filter((name) => name === 'available_at')).toEqual(['available_at']);
    expect(holder.prepare('SELECT COUNT(*) AS n FROM queue').get()).toEqual({ n: 12 });
    holder.close();
  }, 60_000);
});
