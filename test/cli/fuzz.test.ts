import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPool } from '../../src/core/pool.js';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { makeFixtureRuntime } from '../process/fixture.js';

/**
 * Every command with inputs people and scripts get wrong: wrong types, empty strings,
 * huge values, unicode and control characters, traversal ids and negative numbers.
 * Whatever each one means, animus must answer with a documented exit code and one
 * line, never exit 70 or a stack trace. A fixed, deterministic set (no randomness):
 * each command gets PER_COMMAND of the values, rotating, so every value meets every
 * kind of slot across the set; four processes at a time.
 */
const VALUES = ['', ' ', '-1', '1e309', 'NaN', '{"a":[1]}', 'x'.repeat(20_000), '\u202e\u{1F600}ünï\u0007', '../../../etc/passwd', 'agent-../../x', 'line\nbreak'];
const PER_COMMAND = 3;
const ID = 'agent-70000000-0000-4000-8000-000000000007';

/** `V` marks the slot each value goes into. */
const TEMPLATES: string[][] = [
  ['deploy', 'V'],
  ['deploy', 'agent-71000000-0000-4000-8000-000000000007', '--mode', 'V'],
  ['deploy', 'agent-72000000-0000-4000-8000-000000000007', '--process-manager', 'V'],
  ['remove', 'V', '--yes'],
  ['adopt', 'V'],
  ['start', 'V'],
  ['stop', 'V'],
  ['restart', 'V'],
  ['status', 'V'],
  ['logs', 'V'],
  ['logs', ID, '-n', 'V'],
  ['health', 'V'],
  ['health', ID, '--max-pending-age', 'V'],
  ['health', ID, '--watch', 'V', '--json'],
  ['backup', 'V'],
  ['backup', ID, '--keep', 'V'],
  ['backup', 'verify', 'V'],
  ['backup', 'list', 'V'],
  ['restore', 'V', '--from', 'V'],
  ['restore', ID, '--from', 'V', '--yes'],
  ['queue', 'list', 'V'],
  ['queue', 'list', ID, '--limit', 'V'],
  ['queue', 'list', ID, '--status', 'V'],
  ['queue', 'stats', 'V'],
  ['queue', 'delete', ID, '--id', 'V'],
  ['queue', 'retry', ID, '--id', 'V'],
  ['queue', 'flush', ID, '--id', 'V'],
  ['users', 'list', 'V'],
  ['users', 'get', ID, 'V'],
  ['users', 'deactivate', ID, 'V'],
  ['settings', 'show', 'V'],
  ['settings', 'set', ID, 'V', 'V'],
  ['settings', 'set', ID, 'max_retries', 'V'],
  ['env', 'show', 'V'],
  ['env', 'set', ID, 'V', 'x'],
  ['env', 'set', ID, 'AGENT_API_KEY', 'V'],
  ['env', 'unset', ID, 'V'],
  ['update', 'V'],
  ['update', ID, '--ref', 'V'],
  ['update', ID, '--parallel', 'V'],
  ['rollback', 'V'],
  ['send', 'V', 'hello'],
  ['send', ID, 'V', '--wait', '--timeout', 'V'],
  ['audit', '--since', 'V'],
  ['audit', '--agent', 'V'],
  ['config', 'get', 'V'],
  ['telegram', 'login', 'V'],
  ['--home', 'V', 'list'],
];

const DOCUMENTED = new Set([0, 1, 2, 3, 4, 5, 6]);
let home: string;

beforeAll(async () => {
  const root = await tempDir('animus-fuzz');
  home = join(root, 'home');
  const repo = await makeFixtureRuntime(join(root, 'runtime.git'));
  await deployTestAgent(home, { repo, uuid: ID.slice('agent-'.length) });
}, 60_000);

describe('fuzzed arguments', () => {
  it(`${TEMPLATES.length} commands × ${PER_COMMAND} of ${VALUES.length} values: a documented exit code and no stack trace`, async () => {
    const cases = TEMPLATES.flatMap((template, t) =>
      Array.from({ length: PER_COMMAND }, (_, k) => VALUES[(t * PER_COMMAND + k) % VALUES.length]!).map((value) => template.map((part) => (part === 'V' ? value : part))),
    );
    const bad: string[] = [];
    await runPool(cases, 4, async (args) => {
      const result = await execa('node', [BIN, ...args], { reject: false, input: '', timeout: 30_000, env: cliEnv({ home, env: { PM2_HOME: join(home, '..', 'no-pm2') } }), extendEnv: false });
      const shown = JSON.stringify(args.map((a) => (a.length > 40 ? `${a.slice(0, 12)}…(${a.length})` : a)));
      const code = result.exitCode ?? -1;
      if (!DOCUMENTED.has(code)) bad.push(`${shown}: exit ${code} ${result.timedOut ? '(timed out)' : ''}${result.stderr.slice(0, 300)}`);
      else if (/\n\s+at |internal error|This is a bug/.test(result.stderr)) bad.push(`${shown}: ${result.stderr.slice(0, 300)}`);
      else if (code !== 0 && result.stderr.trim().split('\n').filter((l) => l.startsWith('animus: ')).length > 1 && !args.includes('--all')) {
        bad.push(`${shown}: more than one error line: ${result.stderr.slice(0, 300)}`);
      }
    });
    expect(bad).toEqual([]);
  }, 300_000);
});
