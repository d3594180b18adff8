import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';
import { LOCK_FILE, LOCK_SOCKET, readHolder } from '../../src/runtime/lock.js';
import { FAST_ENV, startRuntime } from './harness.js';

/**
 * Issue 10 item 8: one broker per folder even where pids say nothing, as in two
 * containers on one volume (each runtime is PID 1 of its own pid namespace) or with a
 * reused pid. The pid namespaces are real ones (`unshare --pid`, unprivileged).
 */
let home: string;
// Each runtime PID 1 of its own pid namespace, killed with the unshare that runs it.
const PID1 = ['unshare', '--user', '--map-root-user', '--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL'];
const unshareWorks = (() => {
  try {
    return execFileSync(PID1[0]!, [...PID1.slice(1), 'sh', '-c', 'echo $$'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() === '1';
  } catch {
    return false;
  }
})();
if (!unshareWorks) console.log('lock.test: unprivileged pid namespaces (unshare -Urpf) are not available here: the PID 1 case is skipped');

beforeAll(async () => {
  home = await tempDir('animus-lock');
});

describe('the runtime lock', () => {
  it.skipIf(!unshareWorks)('refuses a second runtime when both are PID 1 of their own pid namespace (two containers, one volume)', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    const first = startRuntime(paths, FAST_ENV, PID1);
    const ready = await first.waitForLog((l) => l.msg === 'runtime ready');
    expect(ready).toBeDefined();
    expect(first.logs.find((l) => l.msg === 'runtime starting')!.pid).toBe(1);
    expect(readHolder(paths.dir)?.pid).toBe(1);
    const second = startRuntime(paths, FAST_ENV, PID1);
    expect((await second.exited).code).toBe(78);
    expect(second.stderr()).toMatch(/another runtime \(pid 1\) already serves/);
    // The first one still holds it and still runs.
    expect(first.child.exitCode).toBeNull();
    first.child.kill('SIGKILL');
  });

  it('refuses a second runtime whatever pid the lock file records (a reused pid, its own)', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    const first = startRuntime(paths, FAST_ENV);
    await first.waitForLog((l) => l.msg === 'runtime ready');
    // A pid that is dead, then one that is alive but not a runtime (this test's own).
    for (const recorded of ['999999', String(process.pid)]) {
      await writeFile(join(paths.dir, LOCK_FILE), `${recorded}\n`);
      const second = startRuntime(paths, FAST_ENV);
      expect((await second.exited).code).toBe(78);
      expect(second.stderr()).toMatch(/another runtime .* already serves/);
    }
  });

  it('takes over the lock of a killed holder, and of two starters after it exactly one wins', async () => {
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    const first = startRuntime(paths, FAST_ENV);
    await first.waitForLog((l) => l.msg === 'runtime ready');
    first.child.kill('SIGKILL');
    await first.exited;
    // SIGKILL leaves the socket file and the pid record behind.
    expect(lstatSync(join(paths.dir, LOCK_SOCKET)).isSocket()).toBe(true);
    expect(existsSync(join(paths.dir, LOCK_FILE))).toBe(true);

    const racers = [startRuntime(paths, FAST_ENV), startRuntime(paths, FAST_ENV)];
    const outcomes = await Promise.all(
      racers.map((r) =>
        Promise.race([r.waitForLog((l) => l.msg === 'runtime ready').then(() => 'ready' as const), r.exited.then((e) => `exit ${e.code}` as const)]).catch(async () => `exit ${(await r.exited).code}`),
      ),
    );
    expect(outcomes.sort()).toEqual(['exit 78', 'ready']);
    const winner = racers.find((r) => r.child.exitCode === null)!;
    expect(readHolder(paths.dir)?.pid).toBe(winner.pid);
    winner.child.kill('SIGTERM');
    expect((await winner.exited).code).toBe(0);
    // A clean stop removes both.
    expect(existsSync(join(paths.dir, LOCK_SOCKET))).toBe(false);
    expect(existsSync(join(paths.dir, LOCK_FILE))).toBe(false);
  });
});
