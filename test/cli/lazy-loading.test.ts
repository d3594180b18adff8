import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv, REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/**
 * What a command loads decides what it costs to start: a command whose answer needs no
 * child process (health, status, list from their files and the PM2 socket) must not load
 * execa's hundred-odd modules, and `--version` none of the domain's packages. Seen from
 * outside: module hooks note every module the CLI process resolves, ESM and CommonJS.
 */
let root: string;
let home: string;

beforeAll(async () => {
  root = await tempDir('animus-lazy');
  home = join(root, 'home');
  await deployTestAgent(home);
});

async function loadedBy(args: string[], log: string, env: Record<string, string | undefined> = {}): Promise<string[]> {
  const result = await execa('node', ['--import', join(REPO_ROOT, 'test', 'helpers', 'module-log.mjs'), BIN, ...args], {
    reject: false,
    env: { ...cliEnv({ home, env }), ANIMUS_TEST_MODULE_LOG: log },
    extendEnv: false,
  });
  expect(result.exitCode, result.stderr).toBeLessThanOrEqual(1);
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}

describe('what a command loads', () => {
  it.each([['health'], ['status'], ['list']])('%s loads no execa', async (command) => {
    const modules = await loadedBy([command, '--json'], join(root, `${command}.log`));
    // The hooks saw the CLI start.
    expect(modules.some((url) => url.endsWith('/dist/cli/launch.cjs'))).toBe(true);
    expect(modules.filter((url) => url.includes('/node_modules/execa/'))).toEqual([]);
  });

  it('the hooks see what the CLI imports on use: chalk, for a table in colour', async () => {
    const modules = await loadedBy(['health'], join(root, 'colour.log'), { NO_COLOR: undefined, FORCE_COLOR: '1' });
    expect(modules.some((url) => url.includes('/node_modules/chalk/'))).toBe(true);
  });

  it('--version loads none of the packages commands use', async () => {
    const modules = await loadedBy(['--version'], join(root, 'version.log'));
    expect(modules.some((url) => url.endsWith('/dist/cli/launch.cjs'))).toBe(true);
    expect(modules.filter((url) => /\/(execa|pm2|better-sqlite3)\//.test(url))).toEqual([]);
  });
});
