import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSettings } from '../../src/instances/agent-files.js';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv, json, runCli, type CliResult } from '../helpers/cli.js';
import { usePm2Fixture } from '../process/fixture.js';

/**
 * Two real CLI processes at once on the same agents, 20 rounds each: what a person
 * with two shells (or a cron job and a person) does. Every outcome must be either
 * success or the one-line "busy" refusal, and nothing may be lost or left down.
 */
const ROUNDS = 20;

let root: string;
let home: string;
let pm2Home: string;
let repo: string;

const fixture = usePm2Fixture('animus-concurrency');
beforeAll(() => {
  ({ root, home, pm2Home, repo } = fixture);
});

/** Two CLI processes started together (spawned before either is awaited). */
async function both(a: string[], b: string[]): Promise<[CliResult, CliResult]> {
  const spawn = (args: string[]) =>
    execa('node', [BIN, ...args], { reject: false, input: '', timeout: 120_000, env: cliEnv({ home, pm2Home }), extendEnv: false }).then((r) => ({
      code: r.exitCode ?? -1,
      stdout: r.stdout,
      stderr: r.stderr,
    }));
  return Promise.all([spawn(a), spawn(b)]);
}

/** Succeeded, or refused with one line naming the busy agent, exit 4; never a stack trace. */
function expectDoneOrBusy(result: CliResult): void {
  expect(result.stderr).not.toMatch(/\n\s+at /);
  if (result.code === 0) return;
  expect(result.code, result.stderr).toBe(4);
  for (const line of result.stderr.trim().split('\n').filter((l) => l.startsWith('animus: '))) {
    expect(line).toMatch(/^animus: agent agent-[0-9a-f-]{36} is busy: `[a-z -]+` \(pid \d+\) since \S+; try again when it has finished$/);
  }
}

describe('two commands at once on one agent', () => {
  it(`two settings set on different keys never lose an update (${ROUNDS} rounds)`, async () => {
    const { paths } = await deployTestAgent(home, { repo });
    for (let round = 0; round < ROUNDS; round++) {
      const [a, b] = await both(
        ['settings', 'set', paths.agent.id, 'max_retries', String(round + 1)],
        ['settings', 'set', paths.agent.id, 'message_mode', round % 2 === 0 ? 'listen' : 'echo'],
      );
      expectDoneOrBusy(a);
      expectDoneOrBusy(b);
      const settings = await readSettings(paths);
      // Whatever finished with exit 0 is in the file: the other's write did not replace it.
      if (a.code === 0) expect(settings.max_retries, `round ${round}`).toBe(round + 1);
      if (b.code === 0) expect(settings.message_mode, `round ${round}`).toBe(round % 2 === 0 ? 'listen' : 'echo');
    }
  }, 300_000);

  it(`a backup during a restore: both succeed, or one says busy in one line (${ROUNDS} rounds)`, async () => {
    const { paths } = await deployTestAgent(home, { repo });
    const out = join(root, 'archives');
    const first = await runCli(['backup', paths.agent.id, '--out', out, '--json'], { home, pm2Home });
    expect(first.code, first.stderr).toBe(0);
    const archive = json<{ backups: Array<{ archive: string }> }>(first).backups[0]!.archive;
    for (let round = 0; round < ROUNDS; round++) {
      const [restore, backup] = await both(['restore', paths.agent.id, '--from', archive, '--yes', '--no-start'], ['backup', paths.agent.id, '--out', out]);
      expectDoneOrBusy(restore);
      expectDoneOrBusy(backup);
      expect(backup.stderr).not.toMatch(/does not exist/);
    }
  }, 300_000);
});

describe('two start --all at once', () => {
  it(`leave every agent up (${ROUNDS} rounds)`, async () => {
    const ids: string[] = [];
    const fleetHome = join(root, 'fleet');
    for (let i = 0; i < 3; i++) ids.push((await deployTestAgent(fleetHome, { repo })).id);
    const fleet = (args: string[]) => runCli(args, { home: fleetHome, pm2Home });
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) expect((await fleet(['stop', '--all'])).code).toBe(0);
      const [a, b] = await Promise.all([fleet(['start', '--all']), fleet(['start', '--all'])]);
      expectDoneOrBusy(a);
      expectDoneOrBusy(b);
      const status = json<Array<{ id: string; state: string }>>(await fleet(['status', '--json']));
      expect(status.map((row) => `${row.id} ${row.state}`), `round ${round}\n${a.stderr}\n${b.stderr}`).toEqual(ids.sort().map((id) => `${id} online`));
    }
  }, 600_000);
});
