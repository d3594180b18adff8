import { appendFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { homeLayout } from '../../src/home/layout.js';
import { deployTestAgent } from '../helpers/agents.js';
import { commitToBare, git } from '../helpers/git.js';
import { oneErrorLine, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from '../process/fixture.js';

/** Issue 11, items 11 (non-archive), 12 and 13: the mistakes people make, one line each with the README's exit code. */
let root: string;
let home: string;
let repo: string;

beforeAll(async () => {
  root = await tempDir('animus-mistakes');
  home = join(root, 'home');
  repo = await makeFixtureRuntime(join(root, 'runtime.git'));
}, 60_000);

describe('--home that is not a home', () => {
  it.each([['a missing folder'], ['a file']])('%s: every command says the same line, exit 3', async (kind) => {
    const target = join(root, kind === 'a file' ? 'home-file' : 'no-such-home');
    if (kind === 'a file') await writeFile(target, '');
    for (const args of [['list'], ['status'], ['health'], ['start', '--all'], ['stop', '--all'], ['backup', '--all'], ['update', '--all'], ['queue', 'stats'], ['audit']]) {
      const line = oneErrorLine(await runCli(['--home', target, ...args], { home: target }), 3);
      expect(line, args.join(' ')).toBe(`animus: no animus home at ${target}: run \`animus init --home ${target}\``);
    }
  });
});

describe('a database that is no agent database', () => {
  it.each([['0 bytes'], ['no tables']])('%s: queue list, queue stats and users list say so in one line, exit 5', async (kind) => {
    const { paths, id } = await deployTestAgent(home, { repo });
    await writeFile(paths.db, '');
    if (kind === 'no tables') {
      const db = new Database(paths.db);
      db.exec('CREATE TABLE unrelated (x)');
      db.close();
    }
    for (const args of [['queue', 'list', id], ['queue', 'stats', id], ['users', 'list', id], ['queue', 'retry', id, '--failed']]) {
      expect(oneErrorLine(await runCli(args, { home }), 5), args.join(' ')).toMatch(/animus\.db (has none of the agent tables|lacks the table).*not an agent database/);
    }
  });
});

describe('exit codes and messages as the README says', () => {
  it('a placeholder --api-key is refused at deploy (exit 2) and nothing is made', async () => {
    const id = 'agent-80000000-0000-4000-8000-000000000008';
    const line = oneErrorLine(await runCli(['deploy', id, '--endpoint', 'https://letta.internal', '--api-key', 'your_api_key_here', '--repo', repo], { home }), 2);
    expect(line).toMatch(/AGENT_API_KEY looks like a placeholder/);
    expect(await readdir(home)).not.toContain(id);
  });

  it('adopt of a folder with a malformed .env exits 5; health of an unknown agent exits 3; settings set without a key exits 2', async () => {
    const { paths, id } = await deployTestAgent(home, { repo });
    await appendFile(paths.env, 'not an assignment\n');
    const adopt = await runCli(['adopt', id], { home });
    expect(adopt.code, adopt.stdout + adopt.stderr).toBe(5);
    oneErrorLine(await runCli(['health', 'agent-81000000-0000-4000-8000-000000000008'], { home }), 3);
    oneErrorLine(await runCli(['settings', 'set', id], { home }), 2);
  });

  it('a JSON error never holds a raw line break, even when the input did', async () => {
    const { id } = await deployTestAgent(home, { repo });
    const result = await runCli(['env', 'set', id, 'BAD\nKEY', 'x', '--json'], { home });
    expect(result.code).toBe(2);
    const error = JSON.parse(result.stdout) as { error: { message: string } };
    expect(error.error.message).not.toMatch(/\n/);
    expect(error.error.message).toContain('BAD\\nKEY');
  });
});

describe('init and the home\'s runtime repository', () => {
  it('does not publish over a commit someone pushed to .animus/runtime.git, and says so', async () => {
    const own = join(root, 'own-home');
    expect((await runCli(['init'], { home: own })).code).toBe(0);
    const runtimeRepo = homeLayout(own).runtimeRepo;
    const pushed = await commitToBare(runtimeRepo, { 'main.js': '// my own runtime\n' }, 'my own runtime');
    // A new animus build makes init want to publish: simulate it by a changed marker.
    await mkdir(join(own, '.animus'), { recursive: true });
    await writeFile(join(own, '.animus', 'home.json'), '{}');
    const init = await runCli(['init'], { home: own });
    expect(init.code, init.stderr).toBe(0);
    expect(await git(['rev-parse', 'main'], runtimeRepo)).toBe(pushed);
    expect(init.stdout + init.stderr).toMatch(/a commit animus did not make/);
  });
});
