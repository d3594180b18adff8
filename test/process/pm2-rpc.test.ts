import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listOverRpc } from '../../src/process/pm2-rpc.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { tempDir } from '../helpers/temp.js';
import { usePm2Fixture } from './fixture.js';

/**
 * animus's own client of PM2's RPC socket, against a real PM2 daemon of this file's
 * own: it must list what PM2's CLI lists, and fail in one line when there is nobody
 * to ask or the daemon goes away.
 */
const PM2_BIN = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const fixture = usePm2Fixture('animus-pm2-rpc');

interface Listed {
  name: string;
  pid: number;
  pm_id: number;
  pm2_env: { status: string; pm_cwd: string; restart_time: number };
}

const pm2 = (args: string[]) => execa(process.execPath, [PM2_BIN, ...args], { env: { PM2_HOME: fixture.pm2Home, PATH: process.env.PATH }, extendEnv: false, cwd: fixture.root });

beforeAll(async () => {
  // Enough processes that the answer comes in many chunks (PM2 sends each one's whole environment).
  for (let i = 0; i < 3; i++) await pm2(['start', 'sleep', '--name', `rpc-${i}`, '--no-autorestart', '--', 'infinity']);
}, 60_000);

describe('listOverRpc', () => {
  it('lists every process as PM2 jlist does: names, pids, states and folders', async () => {
    const jlist = JSON.parse((await pm2(['jlist'])).stdout.replace(/^[^[]*/, '')) as Listed[];
    const listed = await listOverRpc<Listed>(fixture.pm2Home);
    const view = (list: Listed[]) => list.map((p) => ({ name: p.name, pid: p.pid, id: p.pm_id, status: p.pm2_env.status, cwd: p.pm2_env.pm_cwd, restarts: p.pm2_env.restart_time })).sort((a, b) => a.id - b.id);
    expect(view(listed)).toEqual(view(jlist));
    expect(view(listed).map((p) => [p.name, p.status])).toEqual([0, 1, 2].map((i) => [`rpc-${i}`, 'online']));
  });

  it('no daemon for this PM2_HOME: one line naming the socket, and no daemon is started', async () => {
    const empty = join(await tempDir('animus-pm2-rpc-none'), 'pm2');
    const error = await listOverRpc(empty).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/ENOENT.*rpc\.sock$/);
    expect((error as Error).message).not.toContain('\n');
  });

  it('a daemon that is gone: rejects in one line, never hangs', async () => {
    await killPm2Daemon(fixture.pm2Home);
    const error = await listOverRpc(fixture.pm2Home, 5_000).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).not.toContain('\n');
    expect((error as Error).message).not.toMatch(/no answer/);
  }, 30_000);
});
