import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cliEnv, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from '../process/fixture.js';

/**
 * A deploy SIGKILLed while its `git clone` waits on a remote that never answers (an
 * HTTP server on 127.0.0.1 that accepts and says nothing): the clone must not outlive
 * it, no agent folder may appear, and the next deploy cleans the staging folder up.
 */
let server: Server;
let port: number;
const sockets: Socket[] = [];

beforeAll(async () => {
  server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/**
 * Pids of git (and its watchdog shell) naming the hanging remote. A node process is never
 * one: the deploy itself names the remote, and so does each child it forks for an earlier
 * git call (publishing the runtime into a new home) until that child execs, which made
 * the kill land before the clone had begun.
 */
async function gitPids(): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (basename(argv[0] ?? '') === 'node') continue;
    if (argv.some((arg) => arg.includes(`127.0.0.1:${port}/`))) pids.push(Number(name));
  }
  return pids;
}

async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const value = await probe();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gave up waiting: ${what}`);
}

describe('a deploy killed with SIGKILL during its clone', () => {
  it('leaves no git running and no agent folder; the next deploy cleans its staging folder', async () => {
    const root = await tempDir('deploy-kill');
    const home = join(root, 'home');
    const id = 'agent-50000000-0000-4000-8000-000000000005';
    const deploy = execa('node', [BIN, 'deploy', id, '--mode', 'echo', '--repo', `http://127.0.0.1:${port}/runtime.git`], { reject: false, env: cliEnv({ home }), extendEnv: false, input: '' });
    const pids = await until(gitPids, (p) => p.length > 0, 'git clone to start');
    expect(pids.length).toBeGreaterThan(0);
    deploy.kill('SIGKILL');
    await deploy;
    await until(gitPids, (p) => p.length === 0, 'the clone to end after its parent died');
    expect((await readdir(home)).filter((name) => name.startsWith('agent-'))).toEqual([]);
    const staging = join(home, '.animus', 'staging');
    expect((await readdir(staging)).some((name) => name.startsWith('50000000-'))).toBe(true);

    const repo = await makeFixtureRuntime(join(root, 'runtime.git'));
    const next = await runCli(['deploy', 'agent-60000000-0000-4000-8000-000000000006', '--mode', 'echo', '--repo', repo], { home });
    expect(next.code, next.stderr).toBe(0);
    expect((await readdir(staging)).filter((name) => name.startsWith('50000000-'))).toEqual([]);
  }, 120_000);
});
