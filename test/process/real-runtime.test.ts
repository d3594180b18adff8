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

  it('backup, then restore while it runs: the instance is stopped, restored, started again, and healthy', async () => {
    expect((await cli(['start', ID])).code).toBe(0);
    const before = json<Array<{ pid: number }>>(await cli(['status', ID, '--json']))[0]!.pid;
    expect((await cli(['send', ID, 'kept by the backup', '--wait'])).code).toBe(0);
    const backup = await cli(['backup', ID, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const archive = json<{ backups: Array<{ archive: string }> }>(backup).backups[0]!.archive;
    expect((await cli(['send', ID, 'after the backup', '--wait'])).code).toBe(0);

    const restored = await cli(['restore', ID, '--from', archive, '--yes', '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(json<{ process: { stopped: string; started: string } }>(restored).process).toEqual({ stopped: 'stopped', started: 'started' });
    const [status] = json<Array<{ state: string; pid: number }>>(await cli(['status', ID, '--json']));
    expect(status!.state).toBe('online');
    expect(status!.pid).not.toBe(before);

    const messages = json<{ items: Array<{ message: string }> }>(await cli(['queue', 'list', '--agent', ID, '--status', 'all', '--json'])).items.map((i) => i.message);
    expect(messages.some((m) => m.includes('kept by the backup'))).toBe(true);
    expect(messages.some((m) => m.includes('after the backup'))).toBe(false);
    const health = await cli(['health', ID, '--json']);
    expect(health.code, health.stdout).toBe(0);
    expect((await cli(['stop', ID])).code).toBe(0);
  });
});
