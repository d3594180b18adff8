import Database from 'better-sqlite3';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { commitToBare, git, makeBareRepo } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { CRASHING_RUNTIME, goodRuntime } from './fixture.js';
import { withProcessManager } from '../../src/process/open.js';
import { readHistory, writeHistory } from '../../src/update/history.js';
import { rollbackAgent } from '../../src/update/rollback.js';
import { updateAgent } from '../../src/update/update.js';
import { homeLayout, type AgentPaths } from '../../src/home/layout.js';

let root: string;
let home: string;
let pm2Home: string;
let env: NodeJS.ProcessEnv;
const GRACE = 1_000;

beforeAll(async () => {
  root = await tempDir('update');
  home = join(root, 'home');
  pm2Home = join(root, 'pm2');
  env = { ...process.env, PM2_HOME: pm2Home };
});

afterAll(async () => {
  await killPm2Daemon(pm2Home);
});

/** A fresh runtime repo and an agent cloned from it, optionally started under PM2. */
async function agentOnFixture(label: string, start: boolean): Promise<{ bare: string; paths: AgentPaths; id: string; first: string }> {
  const bare = join(root, `${label}.git`);
  const first = await makeBareRepo(bare, goodRuntime('v1'));
  const deployed = await deployTestAgent(home, { repo: bare, ref: 'main' });
  if (start) {
    const [result] = await withProcessManager('pm2', { home, env, startGraceMs: GRACE }, (m) => m.start([deployed.paths]));
    expect(result?.outcome, result?.message).toBe('done');
  }
  return { bare, paths: deployed.paths, id: deployed.id, first };
}

async function state(paths: AgentPaths): Promise<string | undefined> {
  return withProcessManager('pm2', { home, env }, async (m) => (await m.status([paths]))[0]?.state);
}

const head = (paths: AgentPaths) => git(['rev-parse', 'HEAD'], paths.clone);

describe('update and rollback under a real PM2', () => {
  it('an update to a commit whose runtime crashes at start rolls back by itself', async () => {
    const { bare, paths, id, first } = await agentOnFixture('crashing', true);
    const broken = await commitToBare(bare, CRASHING_RUNTIME, 'broken release');
    const error = await updateAgent({ home, id, env, graceMs: GRACE }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'EFAILED', exitCode: 1 });
    expect((error as Error).message).toMatch(new RegExp(`update to ${broken.slice(0, 12)} failed .*rolled back to ${first.slice(0, 12)}, which is running again`));
    expect((error as { detail: { logTail?: string[] } }).detail.logTail?.length).toBeGreaterThan(0);
    expect(await readFile(paths.errLog, 'utf8').catch(() => '') + (await readFile(paths.outLog, 'utf8').catch(() => ''))).toMatch(/broken release: cannot start/);
    expect(await head(paths)).toBe(first);
    expect(await git(['symbolic-ref', '--short', 'HEAD'], paths.clone)).toBe('main');
    expect(await state(paths)).toBe('online');
    const history = await readHistory(paths);
    expect(history).toHaveLength(1);
    expect(history[0]).toMatchObject({ action: 'update', from: first, to: broken, outcome: 'rolled-back' });
    await expect(rollbackAgent({ home, id, env })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('updates a running agent that stays up, then rolls it back with its pre-update database', async () => {
    const { bare, paths, id, first } = await agentOnFixture('good', true);
    const db = new Database(paths.db);
    db.prepare("INSERT INTO letta_users (custom_instructions) VALUES ('before the update')").run();
    db.close();
    const second = await commitToBare(bare, goodRuntime('v2'), 'v2');
    const updated = await updateAgent({ home, id, env, graceMs: GRACE });
    expect(updated).toMatchObject({ id, outcome: 'updated', from: first, to: second, ref: 'origin/main', branch: 'main', subject: 'v2', restarted: true, state: 'online' });
    expect(await head(paths)).toBe(second);
    expect(await readFile(paths.outLog, 'utf8')).toMatch(/fixture runtime v2 up/);
    const snapshot = new Database(updated.snapshot!, { readonly: true });
    expect(snapshot.prepare('SELECT custom_instructions AS c FROM letta_users').all()).toEqual([{ c: 'before the update' }]);
    snapshot.close();

    const live = new Database(paths.db);
    live.prepare("INSERT INTO letta_users (custom_instructions) VALUES ('after the update')").run();
    live.close();
    const rolled = await rollbackAgent({ home, id, env, withData: true, graceMs: GRACE });
    expect(rolled).toMatchObject({ id, from: second, to: first, branch: 'main', withData: true, restarted: true, state: 'online' });
    expect(await head(paths)).toBe(first);
    const restored = new Database(paths.db, { readonly: true });
    expect(restored.prepare('SELECT custom_instructions AS c FROM letta_users').all()).toEqual([{ c: 'before the update' }]);
    restored.close();
    const kept = new Database(rolled.keptDatabase!, { readonly: true });
    expect(kept.prepare('SELECT COUNT(*) AS n FROM letta_users').get()).toEqual({ n: 2 });
    kept.close();
    expect((await readHistory(paths)).map((e) => [e.action, e.outcome])).toEqual([
      ['update', 'rolled-back'],
      ['rollback', 'done'],
    ]);
    // Still on main: a plain update fast-forwards to v2 again.
    expect((await updateAgent({ home, id, env, graceMs: GRACE })).to).toBe(second);
  });
});

describe('update of the real runtime', () => {
  it("restarts an echo agent on a new build published into the home's runtime repo and it stays up", async () => {
    const deployed = await deployTestAgent(home, { mode: 'echo' });
    const [started] = await withProcessManager('pm2', { home, env, startGraceMs: GRACE }, (m) => m.start([deployed.paths]));
    expect(started?.outcome, `${started?.message}\n${started?.logTail?.join('\n')}`).toBe('done');
    const main = await readFile(join(deployed.paths.clone, 'main.js'), 'utf8');
    const next = await commitToBare(homeLayout(home).runtimeRepo, { 'main.js': `${main}\n// next build\n` }, 'animus runtime next');
    const updated = await updateAgent({ home, id: deployed.id, env, graceMs: GRACE });
    expect(updated).toMatchObject({ outcome: 'updated', from: deployed.commit, to: next, restarted: true, state: 'online' });
  });
});

describe('update without a running instance', () => {
  it('moves the code, leaves it stopped, and says when there is nothing new', async () => {
    const { bare, paths, id, first } = await agentOnFixture('stopped', false);
    expect(await updateAgent({ home, id, env })).toMatchObject({ outcome: 'current', from: first, to: first, restarted: false });
    const second = await commitToBare(bare, goodRuntime('v2'), 'v2');
    expect(await updateAgent({ home, id, env })).toMatchObject({ outcome: 'updated', to: second, restarted: false, state: null });
    expect(await state(paths)).toBe('not-registered');
  });

  it('rolls back an update whose command was killed half-way (left pending in the history)', async () => {
    const { bare, paths, id, first } = await agentOnFixture('killed', false);
    const second = await commitToBare(bare, goodRuntime('v2'), 'v2');
    await updateAgent({ home, id, env });
    const history = await readHistory(paths);
    history[0]!.outcome = 'pending';
    await writeHistory(paths, history);
    expect(await rollbackAgent({ home, id, env })).toMatchObject({ from: second, to: first, restarted: false });
    expect(await head(paths)).toBe(first);
  });

  it('refuses a dirty clone, a non-fast-forward and an unknown ref, changing nothing', async () => {
    const { bare, paths, id, first } = await agentOnFixture('refusals', false);
    await writeFile(join(paths.clone, 'main.js'), '// edited by hand\n');
    await expect(updateAgent({ home, id, env })).rejects.toMatchObject({ code: 'EEXISTS', message: expect.stringMatching(/local changes \(main\.js\)/) });
    await git(['checkout', '--', 'main.js'], paths.clone);

    await git(['tag', 'v1.0.0', first], bare);
    await git(['commit', '--quiet', '--allow-empty', '-m', 'local only'], paths.clone);
    const diverged = await head(paths);
    await commitToBare(bare, goodRuntime('v2'), 'v2 on main');
    await expect(updateAgent({ home, id, env })).rejects.toMatchObject({ code: 'EEXISTS', message: expect.stringMatching(/not a fast-forward/) });
    expect(await head(paths)).toBe(diverged);

    await expect(updateAgent({ home, id, env, ref: 'no-such-ref' })).rejects.toMatchObject({ code: 'EUSAGE' });
    const tagged = await updateAgent({ home, id, env, ref: 'v1.0.0' });
    expect(tagged).toMatchObject({ outcome: 'updated', to: first, branch: 'main' });
  });
});
