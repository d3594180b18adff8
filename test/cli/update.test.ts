import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { commitToBare, git, makeBareRepo } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { CRASHING_RUNTIME, goodRuntime } from '../update/fixture.js';
import { withProcessManager } from '../../src/process/open.js';
import { homeLayout } from '../../src/home/layout.js';

let root: string;
let home: string;
let pm2Home: string;

beforeAll(async () => {
  root = await tempDir('cli-update');
  home = join(root, 'home');
  pm2Home = `${home}.pm2`;
});

afterAll(async () => {
  await killPm2Daemon(pm2Home);
});

describe('animus update / rollback', () => {
  it("updates an agent of the home's own runtime repo once a new runtime commit is published", async () => {
    const { id, paths, commit } = await deployTestAgent(home, { uuid: '10000000-0000-4000-8000-000000000001' });
    const current = await runCli(['update', id, '--json'], { home });
    expect(current.code, current.stderr).toBe(0);
    expect(json(current)).toMatchObject({ id, outcome: 'current', from: commit, ref: 'origin/main' });
    const next = await commitToBare(homeLayout(home).runtimeRepo, goodRuntime('v2'), 'animus runtime v2');
    const updated = await runCli(['update', id, '--json'], { home });
    expect(updated.code, updated.stderr).toBe(0);
    expect(json(updated)).toMatchObject({ id, outcome: 'updated', from: commit, to: next, restarted: false, snapshot: expect.stringContaining(join(paths.dir, 'updates')) });
    const back = await runCli(['rollback', id], { home });
    expect(back.code, back.stderr).toBe(0);
    expect(back.stdout).toMatch(new RegExp(`${next.slice(0, 12)} → ${commit.slice(0, 12)}`));
    expect(await git(['rev-parse', 'HEAD'], paths.clone)).toBe(commit);
  });

  it('exits 1 and says it rolled back when the new runtime crashes at start', async () => {
    const bare = join(root, 'crash.git');
    const first = await makeBareRepo(bare, goodRuntime('v1'));
    const { id, paths } = await deployTestAgent(home, { repo: bare, ref: 'main', uuid: '20000000-0000-4000-8000-000000000002' });
    const env = { ...process.env, PM2_HOME: pm2Home };
    const [started] = await withProcessManager('pm2', { home, env, startGraceMs: 1000 }, (m) => m.start([paths]));
    expect(started?.outcome, started?.message).toBe('done');
    await commitToBare(bare, CRASHING_RUNTIME, 'broken');
    const result = await runCli(['update', id, '--grace', '1'], { home });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`rolled back to ${first.slice(0, 12)}, which is running again`));
    expect(await git(['rev-parse', 'HEAD'], paths.clone)).toBe(first);
    const [info] = await withProcessManager('pm2', { home, env }, (m) => m.status([paths]));
    expect(info?.state).toBe('online');
  });

  it('--all stops at the first failure unless --keep-going', async () => {
    const fleet = join(root, 'fleet');
    const bare = join(root, 'fleet.git');
    await makeBareRepo(bare, goodRuntime('v1'));
    const a = await deployTestAgent(fleet, { repo: bare, ref: 'main', uuid: '30000000-0000-4000-8000-00000000000a' });
    const b = await deployTestAgent(fleet, { repo: bare, ref: 'main', uuid: '30000000-0000-4000-8000-00000000000b' });
    const next = await commitToBare(bare, goodRuntime('v2'), 'v2');
    await writeFile(join(a.paths.clone, 'main.js'), '// local edit\n');
    const stopped = await runCli(['update', '--all', '--json'], { home: fleet });
    expect(stopped.code).toBe(4);
    expect(json(stopped)).toMatchObject({ updated: [], failed: [{ id: a.id, code: 'EEXISTS' }], skipped: [b.id] });
    expect(stopped.stderr).toMatch(/not tried after the failure/);
    const going = await runCli(['update', '--all', '--keep-going', '--parallel', '2', '--json'], { home: fleet });
    expect(going.code).toBe(4);
    expect(json(going)).toMatchObject({ updated: [{ id: b.id, to: next }], failed: [{ id: a.id }], skipped: [] });
    await killPm2Daemon(`${fleet}.pm2`);
  });

  it('--all goes on past an agent on a detached HEAD (as restore recreates it), saying what to do; the summary comes last and counts current agents apart', async () => {
    const fleet = join(root, 'detached');
    const bare = join(root, 'detached.git');
    const v1 = await makeBareRepo(bare, goodRuntime('v1'));
    const a = await deployTestAgent(fleet, { repo: bare, ref: 'main', uuid: '40000000-0000-4000-8000-00000000000a' });
    const b = await deployTestAgent(fleet, { repo: bare, ref: 'main', uuid: '40000000-0000-4000-8000-00000000000b' });
    const c = await deployTestAgent(fleet, { repo: bare, ref: 'main', uuid: '40000000-0000-4000-8000-00000000000c' });
    await git(['checkout', '--quiet', '--detach', v1], a.paths.clone);
    const next = await commitToBare(bare, goodRuntime('v2'), 'v2');
    await git(['fetch', '--quiet', 'origin'], c.paths.clone);
    await git(['merge', '--quiet', '--ff-only', 'origin/main'], c.paths.clone);
    const result = await runCli(['update', '--all'], { home: fleet });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`${a.id}'s runtime is on a detached HEAD .*animus update ${a.id} --ref main`));
    const lines = result.stderr.trim().split('\n');
    expect(lines[lines.length - 1]).toBe('updated 1, already current 1, pinned 1, failed 0 (of 3 agents)');
    expect(await git(['rev-parse', 'HEAD'], b.paths.clone)).toBe(next);
    const asJson = json<{ pinned: Array<{ id: string }>; failed: unknown[] }>(await runCli(['update', '--all', '--json'], { home: fleet }));
    expect(asJson).toMatchObject({ pinned: [{ id: a.id }], failed: [] });
    await killPm2Daemon(`${fleet}.pm2`);
  });

  it.each([
    [['update'], 2, /pass their ids or --all/],
    [['update', '--all', 'agent-10000000-0000-4000-8000-000000000001'], 2, /not both/],
    [['update', 'agent-10000000-0000-4000-8000-000000000001', '--parallel', '0'], 2, /--parallel "0"/],
    [['update', 'agent-10000000-0000-4000-8000-000000000001', '--grace', 'soon'], 2, /--grace "soon"/],
    [['update', 'nope'], 2, /is not an agent id/],
    [['update', 'agent-90000000-0000-4000-8000-000000000009'], 3, /no agent/],
    [['rollback', 'agent-10000000-0000-4000-8000-000000000001'], 3, /no update to roll back/],
    [['rollback', 'agent-10000000-0000-4000-8000-000000000001', '--with-data'], 2, /pass --yes/],
  ])('%j exits %i', async (args, code, message) => {
    const result = await runCli(args, { home });
    expect(result.code).toBe(code);
    expect(result.stderr).toMatch(message);
  });
});
