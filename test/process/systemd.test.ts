import { execa } from 'execa';
import { access, mkdir, readdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderUnits, unitNames } from '../../src/process/systemd-units.js';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from './fixture.js';

/**
 * The units are rendered for a temp home and checked with systemd's own analyzer, which
 * works without a running systemd. This container has no running systemd, so the
 * commands that need one are tested for saying so and changing nothing.
 */
const ANALYZE = '/usr/bin/systemd-analyze';
const EXPOSURE_BOUND = 1.5;
const UUID = '5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a';

let root: string;
let home: string;
let repo: string;
let analyzeAvailable = false;

beforeAll(async () => {
  root = await tempDir('animus-systemd');
  home = join(root, 'home');
  repo = await makeFixtureRuntime(join(root, 'runtime.git'));
  await deployTestAgent(home, { repo, uuid: UUID, processManager: 'systemd' });
  analyzeAvailable = await access(ANALYZE).then(
    () => true,
    () => false,
  );
  if (!analyzeAvailable) console.log(`skipping systemd-analyze checks: ${ANALYZE} is not installed on this machine`);
}, 60_000);

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { home, env: { XDG_CONFIG_HOME: join(root, 'xdg'), ...env } });
}

/** An instance name beside the template, as systemd would load it. */
async function instanceOf(dir: string): Promise<string> {
  const { prefix, template } = unitNames(home);
  const instance = join(dir, `${prefix}@${UUID}.service`);
  await symlink(join(dir, template), instance).catch(() => {});
  return instance;
}

async function exposure(unit: string): Promise<number> {
  const result = await execa(ANALYZE, ['security', '--offline=yes', unit], { reject: false });
  const match = /Overall exposure level for .*: (\d+(?:\.\d+)?)/.exec(result.stdout);
  if (!match) throw new Error(`no exposure level in systemd-analyze output:\n${result.stdout}\n${result.stderr}`);
  return Number(match[1]);
}

describe('systemd render', () => {
  it('writes the template and the target for the home and the user, with no placeholder left', async () => {
    const out = join(root, 'units-system');
    const result = await cli(['systemd', 'render', '--out', out, '--system', '--run-as', 'animus', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const rendered = json<{ scope: string; files: string[] }>(result);
    expect(rendered.scope).toBe('system');
    const names = unitNames(home);
    expect(names.template).toMatch(/^animus-[0-9a-f]{8}@\.service$/);
    expect((await readdir(out)).sort()).toEqual([names.template, names.target].sort());
    const unit = await readFile(join(out, names.template), 'utf8');
    expect(unit).not.toContain('{{');
    expect(unit).toContain(`PartOf=${names.target}`);
    expect(unit).toContain(`WantedBy=${names.target}`);
    expect(unit).toContain('User=animus\nGroup=animus\n');
    expect(unit).toContain(`WorkingDirectory=${home}/agent-%i\n`);
    expect(unit).toContain(`ExecStart=${process.execPath} ${home}/agent-%i/runtime\n`);
    expect(unit).toContain(`Environment=ANIMUS_AGENT_DIR=${home}/agent-%i`);
    expect(unit).toContain('RestartPreventExitStatus=78');
    expect(unit).toContain('TimeoutStopSec=15');
    // Nothing running as root opens a path the agent controls: no append: log files.
    expect(unit).toContain('StandardOutput=journal\nStandardError=journal\n');
    expect(unit).not.toContain('append:');
    // Nothing shared between agents in /dev/shm or /run.
    expect(unit).toContain('TemporaryFileSystem=/dev/shm:ro /home:ro /root:ro /run/user:ro\n');
    expect(unit).toContain('ReadOnlyPaths=/run\n');
    // Write access to its own folder only; the rest of the home is an empty tmpfs.
    expect(unit).toContain(`ReadWritePaths=${home}/agent-%i\n`);
    expect(unit).toContain(`TemporaryFileSystem=${home}:ro\n`);
    expect(unit.match(/^BindPaths=.*$/gm)).toEqual([`BindPaths=${home}/agent-%i`]);
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
    // No secret can be in a unit: the runtime reads its own .env.
    expect(unit).not.toMatch(/AGENT_API_KEY|EnvironmentFile/);
    const target = await readFile(join(out, names.target), 'utf8');
    expect(target).toContain('WantedBy=multi-user.target');
    // Exactly what install would write.
    const expected = await renderUnits({ home, scope: 'system', user: 'animus' });
    expect(expected.find((u) => u.name === names.template)!.content).toBe(unit);
  });

  it('two homes get units of their own names, so installing one never replaces the other', async () => {
    const other = join(root, 'other-home');
    await mkdir(other, { recursive: true });
    const a = unitNames(home);
    const b = unitNames(other);
    expect(b.template).not.toBe(a.template);
    expect(b.target).not.toBe(a.target);
    expect(unitNames(`${home}/`).template).toBe(a.template);
    const out = join(root, 'units-other');
    const result = await runCli(['systemd', 'render', '--out', out, '--system', '--run-as', 'animus'], { home: other });
    expect(result.code, result.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual([b.template, b.target].sort());
    expect(await readFile(join(out, b.template), 'utf8')).toContain(`PartOf=${b.target}`);
  });

  it('never renders User=root: one line that names --run-as, exit 2, nothing written', async () => {
    const out = join(root, 'units-root');
    const result = await cli(['systemd', 'render', '--out', out, '--system', '--run-as', 'root']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('agents never run as root');
    expect(result.stderr).toContain('--run-as <account>');
    await expect(access(out)).rejects.toThrow();
  });

  it('a user-scope render has no User= and hangs off default.target', async () => {
    const out = join(root, 'units-user');
    const result = await cli(['systemd', 'render', '--out', out, '--user']);
    expect(result.code, result.stderr).toBe(0);
    const unit = await readFile(join(out, unitNames(home).template), 'utf8');
    expect(unit).not.toMatch(/^User=/m);
    expect(await readFile(join(out, unitNames(home).target), 'utf8')).toContain('WantedBy=default.target');
  });

  it('systemd-analyze verify is clean and the exposure is at most 1.5', async (context) => {
    if (!analyzeAvailable) context.skip();
    for (const out of [join(root, 'units-system'), join(root, 'units-user')]) {
      const instance = await instanceOf(out);
      const verify = await execa(ANALYZE, ['verify', '--man=no', instance, join(out, unitNames(home).target)], { reject: false });
      expect(verify.exitCode, verify.stderr).toBe(0);
      expect(verify.stderr.trim(), verify.stderr).toBe('');
      const level = await exposure(instance);
      expect(level).toBeLessThanOrEqual(EXPOSURE_BOUND);
    }
  });

  it('the analyzer can tell a weak unit: a unit without the sandbox scores far above the bound', async (context) => {
    if (!analyzeAvailable) context.skip();
    const dir = join(root, 'weak');
    await mkdir(dir, { recursive: true });
    const unit = join(dir, 'weak.service');
    await execa('sh', ['-c', `printf '[Service]\\nExecStart=${process.execPath} -e 0\\n' > ${unit}`]);
    expect(await exposure(unit)).toBeGreaterThan(EXPOSURE_BOUND);
  });

  it('bad flags and homes that cannot go into a unit: one line, exit 2, nothing written', async () => {
    const both = await cli(['systemd', 'render', '--out', join(root, 'x1'), '--user', '--system']);
    expect(both.code).toBe(2);
    const runAs = await cli(['systemd', 'render', '--out', join(root, 'x2'), '--user', '--run-as', 'bob']);
    expect(runAs.code).toBe(2);
    const badUser = await cli(['systemd', 'render', '--out', join(root, 'x3'), '--system', '--run-as', 'bob;rm']);
    expect(badUser.code).toBe(2);
    await mkdir(join(root, 'my home'), { recursive: true });
    const spaced = await runCli(['systemd', 'render', '--out', join(root, 'x4')], { home: join(root, 'my home') });
    expect(spaced.code).toBe(2);
    expect(spaced.stderr.trim().split('\n')).toHaveLength(1);
    const createWithoutName = await cli(['systemd', 'install', '--system', '--create-user']);
    expect(createWithoutName.code).toBe(2);
    expect(createWithoutName.stderr).toContain('--create-user needs --run-as');
    for (const dir of ['x1', 'x2', 'x3', 'x4']) await expect(access(join(root, dir))).rejects.toThrow();
  });
});

describe('systemd not running (this container)', () => {
  it('install says so in one line, exit 6, and writes nothing', async () => {
    const result = await cli(['systemd', 'install', '--user']);
    expect(result.code).toBe(6);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('systemd is not running');
    await expect(access(join(root, 'xdg', 'systemd'))).rejects.toThrow();
  });

  it('start, stop and restart of a systemd agent: one line, exit 6, nothing changed', async () => {
    for (const verb of ['start', 'stop', 'restart']) {
      const result = await cli([verb, `agent-${UUID}`]);
      expect(result.code, verb).toBe(6);
      const errors = result.stderr.trim().split('\n');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain('systemd is not running');
    }
    await expect(access(join(root, 'xdg', 'systemd'))).rejects.toThrow();
  });

  it('status of a systemd agent is an error for one id and an unknown row among all', async () => {
    const one = await cli(['status', `agent-${UUID}`]);
    expect(one.code).toBe(6);
    const all = await cli(['status', '--json']);
    expect(all.code).toBe(0);
    expect(json<Array<{ id: string; manager: string; state: string; problem: string }>>(all)).toEqual([
      expect.objectContaining({ id: `agent-${UUID}`, manager: 'systemd', state: 'unknown', problem: expect.stringContaining('systemd is not running') }),
    ]);
    const list = await cli(['list', '--json']);
    expect(list.code).toBe(0);
  });

  it('deploy --process-manager systemd makes the folder and warns that it could not enable it', async () => {
    const id = 'agent-7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d';
    const result = await cli(['deploy', id, '--mode', 'echo', '--repo', repo, '--process-manager', 'systemd']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('not enabled under systemd');
    await access(join(home, id, 'settings.json'));
    // And remove works: nothing can be running under a systemd that is not there.
    const removed = await cli(['remove', id, '--yes']);
    expect(removed.code, removed.stderr).toBe(0);
  });

  it('logs of a systemd agent logging to its files work without systemd', async () => {
    const result = await cli(['logs', `agent-${UUID}`, '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(json<{ manager: string; target: string }>(result)).toMatchObject({ manager: 'systemd', target: 'file' });
  });
});
