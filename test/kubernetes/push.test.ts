/**
 * `animus kubernetes push` where it cannot reach a cluster: it says so in one line and leaves
 * the local agent exactly as it was (same manager, no kubernetes.json, no archive taken).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initHome } from '../../src/home/init.js';
import { runCli } from '../helpers/cli.js';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';

const hasKubectl = spawnSync('sh', ['-c', 'command -v kubectl']).status === 0;
const cases: Array<[string, Record<string, string>, RegExp]> = [['kubectl is missing', { ANIMUS_KUBECTL: '/nonexistent/kubectl' }, /kubectl is not installed/]];
// A real kubectl with no cluster configured (it tries 127.0.0.1 only); where none is installed the case above covers the refusal.
if (hasKubectl) cases.push(['no cluster answers', { ANIMUS_KUBECTL: 'kubectl', KUBECONFIG: '/nonexistent/kubeconfig' }, /kubectl get pod failed/]);

describe('animus kubernetes push without a cluster', () => {
  it.each(cases)('%s: one line, exit 6, the local agent untouched', async (_label, env, message) => {
    const home = join(await tempDir('animus-push'), 'home');
    await initHome(home);
    const agent = await deployTestAgent(home, { mode: 'echo', apiKey: 'sk-let-4f9a1c2e8b7d' });
    const before = readFileSync(join(agent.dir, 'settings.json'), 'utf8');
    const result = await runCli(['kubernetes', 'push', agent.id, '--timeout', '5'], { home, env });
    expect(result.code, result.stderr).toBe(6);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
    expect(readFileSync(join(agent.dir, 'settings.json'), 'utf8')).toBe(before);
    expect(existsSync(join(agent.dir, 'kubernetes.json'))).toBe(false);
    expect(existsSync(join(home, 'backups', agent.id))).toBe(false);
  });
});
