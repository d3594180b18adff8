import { execa } from 'execa';
import { appendFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { setEnvValue } from '../../src/config/env-file.js';
import { readSettings, writeSettings } from '../../src/instances/agent-files.js';
import { Pm2Manager } from '../../src/process/pm2.js';
import { deployTestAgent } from '../helpers/agents.js';
import { cliEnv, json, REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { startLines, usePm2Fixture, waitFor } from './fixture.js';

/**
 * Against a real PM2 daemon of this file's own (temporary PM2_HOME, killed by pid in
 * afterAll), with agents deployed from a fixture runtime repo.
 */
const SECRET = 'sk-let-9f8e7d6c5b4a39281706';
const PM2_BIN = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

let root: string;
let home: string;
let pm2Home: string;
let repo: string;

const fixture = usePm2Fixture('animus-pm2');
beforeAll(() => {
  ({ root, home, pm2Home, repo } = fixture);
});

function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(args, { home, pm2Home, env });
}

/** `pm2 jlist` from PM2's own CLI on the test's daemon. */
async function jlist(): Promise<Array<{ name: string; pid: number; pm2_env: Record<string, unknown> }>> {
  const result = await execa(process.execPath, [PM2_BIN, 'jlist'], { env: { PM2_HOME: pm2Home, PATH: process.env.PATH }, extendEnv: false });
  return JSON.parse(result.stdout.slice(result.stdout.indexOf('[')));
}

async function pm2Proc(id: string) {
  return (await jlist()).find((p) => p.name === `animus-${id.slice('agent-'.length)}`);
}

async function deploy(env: Record<string, string> = {}) {
  return deployTestAgent(home, { repo, env });
}

describe('PM2: deploy --start, status, no secrets', () => {
  let id: string;

  it('deploy --start runs the agent under PM2, verified online, with the key nowhere in PM2', async () => {
    const uuid = '0b5e8f1a-3c2d-4e5f-8a9b-0c1d2e3f4a5b';
    id = `agent-${uuid}`;
    // The key is in the CLI's own environment too: PM2 copies that into apps by default.
    const result = await cli(['deploy', id, '--mode', 'echo', '--repo', repo, '--start', '--json'], { AGENT_API_KEY: SECRET });
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ id: string; process: { outcome: string; info: { state: string; pid: number } } }>(result);
    expect(out.process.outcome).toBe('done');
    expect(out.process.info.state).toBe('online');

    const proc = await pm2Proc(id);
    expect(proc?.pm2_env.status).toBe('online');
    expect(proc?.pm2_env.pm_cwd).toBe(join(home, id));
    // The runtime writes (and rotates) logs/runtime.log itself; PM2 keeps only stderr.
    expect(proc?.pm2_env.pm_out_log_path).toBe('/dev/null');
    expect(proc?.pm2_env.pm_err_log_path).toBe(join(home, id, 'logs', 'runtime.err.log'));
    for (const log of ['runtime.log', 'runtime.err.log']) expect((await stat(join(home, id, 'logs', log))).mode & 0o777).toBe(0o600);
    expect(proc?.pm2_env.kill_timeout).toBe(15_000);
    expect(proc?.pm2_env.exp_backoff_restart_delay).toBe(100);
    expect([proc?.pm2_env.stop_exit_codes].flat()).toEqual([78]);
    expect(proc?.pm2_env.max_memory_restart).toBe(256 * 1024 * 1024);

    // The .env holds the key (the runtime reads it there)...
    expect(await readFile(join(home, id, '.env'), 'utf8')).toContain(SECRET);
    // ...but the process was not handed it, and PM2 does not hold it.
    const [line] = await startLines(join(home, id, 'logs', 'runtime.log'));
    expect(line?.hasKey).toBe(false);
    expect(line?.keys).not.toContain('AGENT_API_KEY');
    expect(line?.cwd).toBe(join(home, id));
    expect(JSON.stringify(await jlist())).not.toContain(SECRET);
    const describeOut = await execa(process.execPath, [PM2_BIN, 'describe', `animus-${uuid}`], { env: { PM2_HOME: pm2Home, PATH: process.env.PATH }, extendEnv: false });
    expect(describeOut.stdout).toContain(`animus-${uuid}`);
    expect(describeOut.stdout).not.toContain(SECRET);
    // Neither does the daemon's own environment (it was spawned by that command).
    const daemonPid = (await readFile(join(pm2Home, 'pm2.pid'), 'utf8')).trim();
    expect(await readFile(`/proc/${daemonPid}/environ`, 'utf8')).not.toContain(SECRET);
    // Nothing saved for boot until the operator asks (animus startup).
    await expect(stat(join(pm2Home, 'dump.pm2'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('startup saves the process list (dump.pm2 without the key) and says why it cannot hook into boot here', async () => {
    const result = await cli(['startup', '--json'], { AGENT_API_KEY: SECRET });
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ dumpFile: string; saved: number; installed: boolean; note?: string; command?: string }>(result);
    expect(out.dumpFile).toBe(join(pm2Home, 'dump.pm2'));
    expect(out.saved).toBeGreaterThanOrEqual(1);
    const dump = await readFile(out.dumpFile, 'utf8');
    expect(dump).toContain(`animus-${id.slice(6)}`);
    expect(dump).not.toContain(SECRET);
    expect(out.installed).toBe(false);
    expect(out.note ?? out.command).toBeTruthy();
  });

  it('status --json: manager, state, pid, uptime, restarts, memory, CPU', async () => {
    const result = await cli(['status', id, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const [row] = json<Array<Record<string, unknown>>>(result);
    expect(row).toMatchObject({ id, manager: 'pm2', state: 'online', restarts: 0 });
    expect(row!.pid).toBe((await pm2Proc(id))!.pid);
    expect(typeof row!.uptimeMs).toBe('number');
    expect(row!.memoryBytes as number).toBeGreaterThan(0);
    expect(typeof row!.cpuPercent).toBe('number');
    const list = json<Array<{ id: string; state: string }>>(await cli(['list', '--json']));
    expect(list.find((a) => a.id === id)?.state).toBe('online');

    // What the running runtime recorded about Letta is the agent's problem in status.
    const message = `awaiting approval of send_email({}) since 2026-12-01T07:00:00.000Z: \`animus approvals list --agent ${id}\``;
    const stateFile = join(home, id, 'runtime-state.json');
    await writeFile(stateFile, JSON.stringify({ format: 1, pid: row!.pid, updatedAt: new Date().toISOString(), sections: { letta: { status: 'warn', message, at: new Date().toISOString() } } }), { mode: 0o600 });
    try {
      const held = await cli(['status', id, '--json']);
      expect(held.code, held.stderr).toBe(0);
      expect(json<Array<Record<string, unknown>>>(held)[0]).toMatchObject({ id, state: 'online', problem: message });
      const people = await cli(['status']);
      expect(people.stderr).toContain(`${id}: awaiting approval of send_email`);
    } finally {
      await rm(stateFile, { force: true });
    }
  });

  it('start of a running agent is a no-op with a note, exit 0', async () => {
    const before = (await pm2Proc(id))!.pid;
    const result = await cli(['start', id]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('already running');
    expect((await pm2Proc(id))!.pid).toBe(before);
  });

  it('restart picks up a changed .env and a changed memory limit', async () => {
    const paths = (await deployTestAgent(home, { repo })).paths;
    await cli(['start', paths.agent.id]);
    await writeFile(paths.env, setEnvValue(await readFile(paths.env, 'utf8'), 'FIXTURE_VALUE', 'second'));
    const settings = await readSettings(paths);
    await writeSettings(paths, { ...settings, memory_limit_mb: 300 });
    const result = await cli(['restart', paths.agent.id, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(json<Array<{ outcome: string }>>(result)[0]!.outcome).toBe('done');
    const lines = await startLines(paths.outLog);
    expect(lines.at(-1)?.value).toBe('second');
    const proc = await pm2Proc(paths.agent.id);
    expect(proc?.pm2_env.max_memory_restart).toBe(300 * 1024 * 1024);
    // V8's limits follow memory_limit_mb: the running process has them on its command line.
    expect(proc?.pm2_env.node_args).toEqual(['--max-old-space-size=180', '--max-semi-space-size=1', '--optimize-for-size', '--single-threaded-gc']);
    // The old space (180) plus the young generation make V8's heap limit.
    expect(lines.at(-1)!.heapLimitMb).toBeGreaterThanOrEqual(180);
    expect(lines.at(-1)!.heapLimitMb).toBeLessThan(200);
    await cli(['stop', paths.agent.id]);
  });

  it('a crash is restarted with a growing backoff, and the agent comes back once the cause is gone', async () => {
    const paths = (await deploy()).paths;
    expect((await cli(['start', paths.agent.id])).code).toBe(0);
    const crash = join(paths.dir, 'crash');
    await writeFile(crash, '');
    const crashed = await waitFor('three restarts', async () => {
      const proc = await pm2Proc(paths.agent.id);
      return Number(proc?.pm2_env.restart_time) >= 3 ? proc : undefined;
    });
    // PM2's exponential backoff: 100 ms, then ×1.5 per consecutive crash.
    expect(Number(crashed!.pm2_env.prev_restart_delay)).toBeGreaterThan(100);
    const status = json<Array<{ state: string; restarts: number }>>(await cli(['status', paths.agent.id, '--json']))[0]!;
    expect(status.restarts).toBeGreaterThanOrEqual(3);
    await rm(crash);
    await waitFor('online again', async () => {
      const proc = await pm2Proc(paths.agent.id);
      if (proc?.pm2_env.status !== 'online') return undefined;
      return (await startLines(paths.outLog)).some((l) => l.pid === proc.pid) ? true : undefined;
    });
    await cli(['stop', paths.agent.id]);
  });
});

describe('PM2: failures, stop, remove', () => {
  it('a runtime that exits 78 fails start with one line and its log, and is left stopped (no crash loop)', async () => {
    const { paths } = await deploy({ FIXTURE_EXIT: '78' });
    const result = await cli(['start', paths.agent.id]);
    expect(result.code).toBe(1);
    const errors = result.stderr.split('\n').filter((l) => l.startsWith('animus: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('exited with code 78 (configuration error)');
    expect(result.stderr).toContain('configuration error: FIXTURE_EXIT is set');
    expect(result.stderr).not.toContain('    at ');
    const proc = await pm2Proc(paths.agent.id);
    expect(proc?.pm2_env.status).toBe('stopped');
  });

  it('a runtime that crashes at start fails start and is stopped, not left restarting', async () => {
    const { paths } = await deploy();
    await writeFile(join(paths.dir, 'crash'), '');
    const result = await cli(['start', paths.agent.id, '--json']);
    expect(result.code).toBe(1);
    const [out] = json<Array<{ outcome: string; code: string; logTail: string[] }>>(result);
    expect(out).toMatchObject({ outcome: 'failed', code: 'EFAILED' });
    expect(out!.logTail.join('\n')).toContain('crash file present');
    const proc = await pm2Proc(paths.agent.id);
    expect(proc?.pm2_env.status).toBe('stopped');
    const restarts = Number(proc?.pm2_env.restart_time);
    expect(Number((await pm2Proc(paths.agent.id))?.pm2_env.restart_time)).toBe(restarts);
  });

  it('bad input: unknown id (3), bad id (2), neither ids nor --all (2); nothing is started', async () => {
    const before = (await jlist()).length;
    const unknown = await cli(['start', 'agent-00000000-0000-4000-8000-000000000000']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await cli(['stop', '../etc']);
    expect(bad.code).toBe(2);
    const none = await cli(['restart']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--all');
    const both = await cli(['start', 'agent-00000000-0000-4000-8000-000000000000', '--all']);
    expect(both.code).toBe(2);
    expect((await jlist()).length).toBe(before);
  });

  it('stop, then stop again (a no-op, exit 0), and logs of the stopped agent', async () => {
    const { paths } = await deploy({ FIXTURE_VALUE: 'for-logs' });
    expect((await cli(['start', paths.agent.id])).code).toBe(0);
    const stopped = await cli(['stop', paths.agent.id, '--json']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(json<Array<{ outcome: string; info: { state: string } }>>(stopped)[0]).toMatchObject({ outcome: 'done', info: { state: 'stopped' } });
    expect((await pm2Proc(paths.agent.id))?.pm2_env.status).toBe('stopped');
    // Graceful: the runtime saw SIGTERM.
    expect(await readFile(paths.outLog, 'utf8')).toContain('"event":"stop"');
    const again = await cli(['stop', paths.agent.id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already stopped');

    const logs = await cli(['logs', paths.agent.id, '-n', '1', '--json']);
    expect(logs.code, logs.stderr).toBe(0);
    const out = json<{ manager: string; target: string; sources: Array<{ name: string; lines: string[] }> }>(logs);
    expect(out).toMatchObject({ manager: 'pm2', target: 'file' });
    expect(out.sources[0]).toMatchObject({ name: 'runtime.log' });
    expect(out.sources[0]!.lines).toHaveLength(1);
    expect(out.sources[0]!.lines[0]).toContain('"event":"stop"');
    const human = await cli(['logs', paths.agent.id, '-n', '5']);
    expect(human.stdout).toContain('"value":"for-logs"');
    expect((await cli(['logs', paths.agent.id, '-n', 'x'])).code).toBe(2);
    expect((await cli(['logs', paths.agent.id, '-f', '--json'])).code).toBe(2);
  });

  it('logs -f prints what is appended, secrets masked, until Ctrl-C', async () => {
    const { paths } = await deploy({ TELEGRAM_BOT_TOKEN: '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q' });
    await writeFile(paths.outLog, 'first line\n');
    const child = execa(process.execPath, [join(REPO_ROOT, 'bin', 'animus.js'), 'logs', paths.agent.id, '-n', '1', '-f'], { env: cliEnv({ home, pm2Home }), extendEnv: false, reject: false });
    let seen = '';
    child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    await waitFor('the tail', async () => (seen.includes('first line') ? true : undefined));
    await appendFile(paths.outLog, 'appended with 7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q inside\n');
    await waitFor('the appended line', async () => (seen.includes('appended with') ? true : undefined));
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(0);
    expect(seen).toContain('appended with [REDACTED] inside');
    expect(seen).not.toContain('follow-secret-token');
  });

  it('remove stops and unregisters the instance before moving the folder', async () => {
    const { paths } = await deploy();
    expect((await cli(['start', paths.agent.id])).code).toBe(0);
    const pid = (await pm2Proc(paths.agent.id))!.pid;
    const result = await cli(['remove', paths.agent.id, '--yes', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(await pm2Proc(paths.agent.id)).toBeUndefined();
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(stat(paths.dir)).rejects.toThrow();
  });

  it('once startup saved the list, start, stop and remove keep it current for boot', async () => {
    const saved = async () => (JSON.parse(await readFile(join(pm2Home, 'dump.pm2'), 'utf8')) as Array<{ name: string; status?: string }>);
    const name = (paths: { agent: { id: string } }) => `animus-${paths.agent.id.slice('agent-'.length)}`;
    const { paths } = await deploy();
    expect((await cli(['start', paths.agent.id])).code).toBe(0);
    expect((await saved()).map((p) => p.name)).toContain(name(paths));
    expect((await cli(['stop', paths.agent.id])).code).toBe(0);
    expect((await saved()).find((p) => p.name === name(paths))?.status).toBe('stopped');
    expect((await cli(['remove', paths.agent.id, '--yes'])).code).toBe(0);
    expect((await saved()).map((p) => p.name)).not.toContain(name(paths));
  });

  it('start --all / stop --all leave another PM2 app of the same daemon untouched', async () => {
    const other = join(root, 'other-app.js');
    await writeFile(other, 'setInterval(() => {}, 1000);\n');
    await execa(process.execPath, [PM2_BIN, 'start', other, '--name', 'users-own-app'], { env: { PM2_HOME: pm2Home, PATH: process.env.PATH }, extendEnv: false });
    const before = (await jlist()).find((p) => p.name === 'users-own-app')!;
    expect(before.pm2_env.status).toBe('online');

    const started = await cli(['start', '--all', '--json']);
    // Some fixtures above are built to fail; every healthy agent must be up.
    const results = json<Array<{ id: string; outcome: string }>>(started);
    expect(results.filter((r) => r.outcome !== 'failed').length).toBeGreaterThan(0);
    const stopped = await cli(['stop', '--all', '--json']);
    expect(stopped.code, stopped.stderr).toBe(0);
    for (const proc of await jlist()) if (proc.name.startsWith('animus-')) expect(proc.pm2_env.status).toBe('stopped');

    const after = (await jlist()).find((p) => p.name === 'users-own-app')!;
    expect(after.pm2_env.status).toBe('online');
    expect(after.pid).toBe(before.pid);
    expect(after.pm2_env.restart_time).toBe(0);
  });

  it('status asks without spawning a daemon: a fresh PM2_HOME reports not-registered and stays empty', async () => {
    const { paths } = await deploy();
    const freshPm2 = join(root, 'fresh-pm2');
    const manager = new Pm2Manager({ env: { ...process.env, PM2_HOME: freshPm2 } });
    try {
      expect((await manager.status([paths]))[0]!.state).toBe('not-registered');
      expect((await manager.stop([paths]))[0]!.outcome).toBe('already');
    } finally {
      await manager.close();
    }
    await expect(stat(join(freshPm2, 'pm2.pid'))).rejects.toThrow();
  });

  it('a daemon that cannot start is one line, exit 6, nothing changed', async () => {
    const { paths } = await deploy();
    const blocker = join(root, 'not-a-dir');
    await writeFile(blocker, '');
    const result = await runCli(['start', paths.agent.id], { home, pm2Home: join(blocker, 'pm2') });
    expect(result.code).toBe(6);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('PM2');
  });
});
