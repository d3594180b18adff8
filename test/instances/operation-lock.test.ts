import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { agentPaths } from '../../src/home/layout.js';
import { lockFileOf, lockHolder, processStart, withAgentLock } from '../../src/instances/operation-lock.js';
import { tempDir } from '../helpers/temp.js';

const children: Array<ReturnType<typeof execa>> = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => {});
  }
});

async function agent() {
  const home = await tempDir('lock');
  const paths = agentPaths(home, agentIdFromUuid('40000000-0000-4000-8000-000000000004'));
  await mkdir(paths.dir, { recursive: true });
  return paths;
}

/** A process that lives until killed, and the lock file it would have written. */
async function holderProcess(paths: ReturnType<typeof agentPaths>, change: Record<string, unknown> = {}) {
  const child = execa(process.execPath, ['-e', 'setInterval(() => {}, 60000)']);
  children.push(child);
  await new Promise((resolve) => child.once('spawn', resolve));
  const pid = child.pid!;
  const file = lockFileOf(paths);
  await mkdir(dirname(file), { recursive: true });
  const holder = { pid, start: processStart(pid), host: hostname(), command: 'start --all', since: '2026-12-01T06:00:00.000Z', nonce: 'n0', ...change };
  await writeFile(file, `${JSON.stringify(holder)}\n`);
  return { child, pid, file };
}

describe('the per-agent operation lock', () => {
  it('runs the work holding the lock and leaves nothing behind', async () => {
    const paths = await agent();
    const seen = await withAgentLock(paths, { command: 'settings set' }, async () => (await lockHolder(paths))?.command);
    expect(seen).toBe('settings set');
    expect(await readdir(dirname(lockFileOf(paths)))).toEqual([]);
  });

  it('says who is busy, in one line with exit 4, after a short wait, and never runs the work', async () => {
    const paths = await agent();
    const { pid } = await holderProcess(paths);
    let ran = false;
    const error = await withAgentLock(paths, { command: 'restart', waitMs: 300 }, async () => {
      ran = true;
    }).catch((e: unknown) => e);
    expect(ran).toBe(false);
    expect(error).toMatchObject({
      code: 'EEXISTS',
      exitCode: 4,
      message: `agent ${paths.agent.id} is busy: \`start --all\` (pid ${pid}) since 2026-12-01T06:00:00.000Z; try again when it has finished`,
    });
  });

  it('takes over the lock of a holder killed with SIGKILL', async () => {
    const paths = await agent();
    const { child, file } = await holderProcess(paths);
    child.kill('SIGKILL');
    await child.catch(() => {});
    const holder = await withAgentLock(paths, { command: 'backup', waitMs: 0 }, async () => JSON.parse(await readFile(file, 'utf8')) as { pid: number; command: string });
    expect(holder).toMatchObject({ pid: process.pid, command: 'backup' });
  });

  it('does not take a live process that reuses the dead holder\'s pid for the holder', async () => {
    const paths = await agent();
    // The pid is alive, but it started at another time than the one recorded: a different process.
    await holderProcess(paths, { start: '1' });
    await expect(withAgentLock(paths, { command: 'stop', waitMs: 0 }, async () => 'ran')).resolves.toBe('ran');
  });

  it('waits for a holder that finishes within the wait', async () => {
    const paths = await agent();
    const order: string[] = [];
    const first = withAgentLock(paths, { command: 'update' }, async () => {
      order.push('first in');
      await new Promise((resolve) => setTimeout(resolve, 300));
      order.push('first out');
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await withAgentLock(paths, { command: 'settings set', waitMs: 10_000 }, async () => order.push('second'));
    await first;
    expect(order).toEqual(['first in', 'first out', 'second']);
  });

  it('lets only one of many takers racing over a stale lock hold it at a time', async () => {
    const paths = await agent();
    const { child } = await holderProcess(paths);
    child.kill('SIGKILL');
    await child.catch(() => {});
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        withAgentLock(paths, { command: `taker ${i}`, waitMs: 60_000 }, async () => {
          inside++;
          most = Math.max(most, inside);
          await new Promise((resolve) => setTimeout(resolve, 5));
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(await readdir(dirname(lockFileOf(paths)))).toEqual([]);
  });

  it('is re-entrant within one command, and released when the work fails', async () => {
    const paths = await agent();
    const inner = await withAgentLock(paths, { command: 'restore' }, () => withAgentLock(paths, { command: 'stop', waitMs: 0 }, async () => (await lockHolder(paths))?.command));
    expect(inner).toBe('restore');
    await expect(withAgentLock(paths, { command: 'update' }, async () => {
      throw new Error('boom');
    })).rejects.toThrow('boom');
    expect(await lockHolder(paths)).toBeUndefined();
  });

  it('treats a lock file that is not one as held until it is old', async () => {
    const paths = await agent();
    const file = lockFileOf(paths);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, 'garbage');
    await expect(withAgentLock(paths, { command: 'stop', waitMs: 0 }, async () => 'ran')).rejects.toMatchObject({ message: expect.stringContaining('busy: another animus command') });
    const { utimes } = await import('node:fs/promises');
    await utimes(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    await expect(withAgentLock(paths, { command: 'stop', waitMs: 0 }, async () => 'ran')).resolves.toBe('ran');
  });
});
