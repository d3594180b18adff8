/**
 * The runtime in a container (ANIMUS_IN_CONTAINER=1, as the rendered StatefulSet runs it):
 * the real runtime process answers the pod's probes (`animus kubernetes probe ready|live`)
 * on its status socket; a configuration error keeps it up and not ready with its reasons on
 * stderr (what `kubectl logs` shows) instead of exiting 78 into a crash loop; a replica other
 * than 0 never runs the agent.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { initHome } from '../../src/home/init.js';
import { runCli } from '../helpers/cli.js';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';

const running: ResultPromise[] = [];

afterEach(async () => {
  for (const child of running.splice(0)) {
    child.kill('SIGKILL');
    await child.catch(() => {});
  }
});

async function agentInContainer(extraEnv: Record<string, string> = {}, prepare?: (dir: string) => Promise<void>) {
  const root = await tempDir('animus-container');
  const home = join(root, 'home');
  await initHome(home);
  const agent = await deployTestAgent(home, { mode: 'echo', apiKey: 'sk-let-4f9a1c2e8b7d' });
  await prepare?.(agent.dir);
  const socket = join(root, 'run', 'status.sock');
  const env = { PATH: process.env.PATH ?? '', LANG: 'C.UTF-8', ANIMUS_IN_CONTAINER: '1', ANIMUS_AGENT_DIR: agent.dir, ANIMUS_STATUS_SOCKET: socket, ...extraEnv };
  const child = execa('node', [join(agent.dir, 'runtime', 'main.js')], { cwd: agent.dir, env, extendEnv: false, reject: false, all: true });
  running.push(child);
  const probe = (kind: string) => runCli(['--json', 'kubernetes', 'probe', kind], { home, env: { ANIMUS_STATUS_SOCKET: socket } });
  const waitForProbe = async (kind: string, want: number) => {
    for (let i = 0; i < 300; i++) {
      const result = await probe(kind);
      // Only an answer counts: before the socket is up the probe fails for want of one.
      const status = result.stdout ? (JSON.parse(result.stdout) as { status?: { reasons: string[] } }).status : undefined;
      if (result.code === want && status && !status.reasons.includes('starting')) return result;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`probe ${kind} never exited ${want}`);
  };
  return { child, dir: agent.dir, probe, waitForProbe };
}

describe('the runtime in a container', () => {
  it('answers ready and live once it runs, and stops cleanly on SIGTERM', async () => {
    const { child, waitForProbe, probe } = await agentInContainer();
    const ready = await waitForProbe('ready', 0);
    expect(JSON.parse(ready.stdout)).toMatchObject({ kind: 'ready', ok: true, status: { ready: true } });
    expect((await probe('live')).code).toBe(0);
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    // Nothing answers any more: both probes fail.
    expect((await probe('live')).code).toBe(1);
  });

  it('stays up and not ready on a configuration error, with the reasons in its log', async () => {
    const { child, dir, waitForProbe, probe } = await agentInContainer({}, async (dir) => {
      await writeFile(join(dir, 'settings.json'), JSON.stringify({ message_mode: 'shout' }));
    });
    const notReady = await waitForProbe('ready', 1);
    const doc = JSON.parse(notReady.stdout) as { ok: boolean; message: string; status: { ready: boolean; reasons: string[] } };
    expect(doc.ok).toBe(false);
    expect(doc.status.reasons.join(' ')).toContain('message_mode');
    // Liveness holds: Kubernetes keeps the pod (not ready) instead of restarting it in a loop.
    expect((await probe('live')).code).toBe(0);
    expect(child.exitCode).toBeNull();
    expect(existsSync(join(dir, 'runtime.pid'))).toBe(false);
    child.kill('SIGTERM');
    const done = await child;
    expect(done.exitCode).toBe(0);
    const notReadyLines = String(done.all).split('\n').filter((line) => line.includes('not ready:'));
    expect(notReadyLines).toHaveLength(1);
    expect(notReadyLines[0]).toContain('message_mode');
  });

  it('does not run the agent in a second replica of its StatefulSet', async () => {
    const { child, dir, waitForProbe } = await agentInContainer({ ANIMUS_POD_NAME: 'animus-3d1f7a20-5b6c-4e8d-9f01-a2b3c4d5e6f7-1' });
    const notReady = await waitForProbe('ready', 1);
    expect(JSON.parse(notReady.stdout).message).toContain('replica 1');
    expect(existsSync(join(dir, 'runtime.pid'))).toBe(false);
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
  });

  it('runs replica 0', async () => {
    const { child, waitForProbe } = await agentInContainer({ ANIMUS_POD_NAME: 'animus-3d1f7a20-5b6c-4e8d-9f01-a2b3c4d5e6f7-0' });
    await waitForProbe('ready', 0);
    child.kill('SIGTERM');
    expect((await child).exitCode).toBe(0);
  });
});
