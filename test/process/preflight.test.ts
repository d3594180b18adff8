import { appendFile, writeFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli, type CliResult } from '../helpers/cli.js';
import { usePm2Fixture } from './fixture.js';

/** Items 8 and 9 of issue 11, against a real PM2 daemon of this file's own. */
let home: string;
let pm2Home: string;
let repo: string;

const fixture = usePm2Fixture('animus-preflight');
beforeAll(() => {
  ({ home, pm2Home, repo } = fixture);
});

const cli = (args: string[]): Promise<CliResult> => runCli(args, { home, pm2Home });

async function state(id: string): Promise<{ state: string; pid?: number }> {
  const result = await cli(['status', id, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return json<Array<{ state: string; pid?: number }>>(result)[0]!;
}

function oneLine(result: CliResult, code: number): string {
  expect(result.code, result.stderr).toBe(code);
  const lines = result.stderr.trim().split('\n').filter((l) => l.startsWith('animus: '));
  expect(lines).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('start and restart check the configuration first', () => {
  it('a restart with a malformed .env is refused (exit 5) and the running agent keeps running, same pid', async () => {
    const { paths, id } = await deployTestAgent(home, { repo });
    expect((await cli(['start', id])).code).toBe(0);
    const before = await state(id);
    expect(before.state).toBe('online');
    await appendFile(paths.env, 'this line is not an assignment\n');
    expect(oneLine(await cli(['restart', id]), 5)).toMatch(new RegExp(`${id} would not start: .*is not KEY=VALUE.*nothing was changed \\(a running instance keeps running\\)`));
    expect(await state(id)).toMatchObject({ state: 'online', pid: before.pid });
    await cli(['stop', id]);
  });

  it('a start with a settings.json the runtime refuses starts nothing (exit 5)', async () => {
    const { paths, id } = await deployTestAgent(home, { repo });
    const settings = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(paths.settings, 'utf8')));
    settings.plugins.telegram_bot.enabled = true;
    await writeFile(paths.settings, JSON.stringify(settings));
    expect(oneLine(await cli(['start', id]), 5)).toMatch(/TELEGRAM_BOT_TOKEN is missing.*nothing was started/);
    expect((await state(id)).state).toBe('not-registered');
  });
});

describe('stop and status need only the process name', () => {
  it('work on a running agent whose settings.json is malformed', async () => {
    const { paths, id } = await deployTestAgent(home, { repo });
    expect((await cli(['start', id])).code).toBe(0);
    await writeFile(paths.settings, '{ this is not json');
    expect((await state(id)).state).toBe('online');
    const stop = await cli(['stop', id, '--json']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(json<Array<{ outcome: string }>>(stop)[0]!.outcome).toBe('done');
    expect((await state(id)).state).toBe('stopped');
  });
});
