import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { killPm2Daemon } from '../helpers/pm2.js';

/** The real runtime (the home's own runtime source, built from src/runtime) in echo mode under PM2. */
let root: string;
let home: string;
let pm2Home: string;
const ID = 'agent-3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a';

beforeAll(async () => {
  root = await tempDir('animus-pm2-runtime');
  home = join(root, 'home');
  pm2Home = join(root, 'pm2');
});

afterAll(async () => {
  if (pm2Home) await killPm2Daemon(pm2Home);
}, 60_000);

const cli = (args: string[]) => runCli(args, { home, pm2Home });

describe('the real runtime under PM2 (echo mode)', () => {
  it('deploy --start, answer a message, stop gracefully on SIGTERM', async () => {
    const deployed = await cli(['deploy', ID, '--mode', 'echo', '--start', '--json']);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(json<{ process: { outcome: string } }>(deployed).process.outcome).toBe('done');

    const [status] = json<Array<{ state: string; pid: number }>>(await cli(['status', ID, '--json']));
    expect(status).toMatchObject({ state: 'online' });

    const sent = await cli(['send', ID, 'ping from the process test', '--wait', '--json']);
    expect(sent.code, sent.stderr).toBe(0);
    expect(json<{ status: string; reply: string }>(sent)).toMatchObject({ status: 'completed', reply: expect.stringContaining('ping from the process test') });

    const stopped = await cli(['stop', ID]);
    expect(stopped.code, stopped.stderr).toBe(0);
    const log = (await readFile(join(home, ID, 'logs', 'runtime.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; reason?: string });
    expect(log.at(-1)).toMatchObject({ msg: 'runtime stopped', reason: 'SIGTERM' });
  });
});
