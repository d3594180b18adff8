import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findForward } from '../../src/kubernetes/forward.js';
import { podInfo } from '../../src/process/kubernetes.js';
import { tempDir } from '../helpers/temp.js';

const PUSHED = 'agent-3d1f7a20-5b6c-4e8d-9f01-a2b3c4d5e6f7';
const LOCAL = 'agent-4e2a8b31-6c7d-4f9e-8a12-b3c4d5e6f7a8';

describe('commands forwarded to a pushed agent\'s pod', () => {
  let home = '';
  beforeAll(async () => {
    home = await tempDir('animus-forward');
    for (const id of [PUSHED, LOCAL]) await mkdir(join(home, id), { recursive: true });
    await writeFile(join(home, PUSHED, 'kubernetes.json'), JSON.stringify({ namespace: 'bots', statefulSet: 'x', pod: 'x-0', container: 'runtime', pushedAt: '' }));
  });

  it.each([
    [['queue', 'list', '--agent', PUSHED], ['queue', 'list', '--agent', PUSHED]],
    [['--json', 'users', 'list', PUSHED], ['--json', 'users', 'list', PUSHED]],
    [['--home', '/elsewhere', 'settings', 'set', '--agent', PUSHED, 'message_mode', 'echo'], ['settings', 'set', '--agent', PUSHED, 'message_mode', 'echo']],
    [['backup', PUSHED.slice('agent-'.length)], ['backup', PUSHED.slice('agent-'.length)]],
    [['--json', 'send', PUSHED, 'hello there', '--wait'], ['--json', 'send', PUSHED, 'hello there', '--wait']],
  ])('forwards %j as %j (without this machine\'s --home)', (argv, args) => {
    expect(findForward(argv, home)).toEqual({ agentDir: join(home, PUSHED), args });
  });

  it.each([
    [['queue', 'list', '--agent', LOCAL]],
    [['status', PUSHED]],
    [['logs', PUSHED]],
    [['queue', 'list']],
  ])('runs %j here', (argv) => {
    expect(findForward(argv, home)).toBeUndefined();
  });
});

describe('a pod as a process', () => {
  const pod = (status: object, metadata: object = {}) => ({ metadata: { name: 'animus-x-0', ...metadata }, status });
  const runtime = (state: object, restartCount = 0) => ({ containerStatuses: [{ name: 'runtime', ready: false, restartCount, state }] });

  it('is online when ready, with its uptime and restarts', () => {
    const startedAt = new Date(Date.now() - 60_000).toISOString();
    const info = podInfo('agent-x', pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }], ...runtime({ running: { startedAt } }, 2) }));
    expect(info).toMatchObject({ manager: 'kubernetes', state: 'online', restarts: 2 });
    expect(info.uptimeMs).toBeGreaterThanOrEqual(60_000);
  });

  it('is errored when it runs but is not ready (a configuration error held by the runtime)', () => {
    expect(podInfo('agent-x', pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }], ...runtime({ running: {} }) })).state).toBe('errored');
  });

  it('is starting while pending or in its init container, stopping while deleted', () => {
    expect(podInfo('agent-x', pod({ phase: 'Pending', ...runtime({ waiting: { reason: 'PodInitializing' } }) })).state).toBe('starting');
    expect(podInfo('agent-x', pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }, { deletionTimestamp: new Date().toISOString() })).state).toBe('stopping');
  });
});
