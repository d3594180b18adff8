import { appendFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { agentPathsIn } from '../../src/home/layout.js';
import { followFiles, tailLines } from '../../src/process/log-tail.js';
import { mapPm2Status, pm2ProcessName, resolvePm2Home } from '../../src/process/pm2.js';
import { instanceEnv, scrubbedEnv } from '../../src/process/process-env.js';
import { renderDropIn, unitDirectory } from '../../src/process/systemd-units.js';
import { tempDir } from '../helpers/temp.js';

const agent = agentIdFromUuid('0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0');
const paths = agentPathsIn('/srv/animus/agent-0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0', agent);

describe('what an instance is given', () => {
  const caller = { PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', AGENT_API_KEY: 'sk-x', TELEGRAM_BOT_TOKEN: 't', AWS_SECRET_ACCESS_KEY: 's', ANIMUS_HOME: '/h', NODE_OPTIONS: '--inspect' };

  it('instanceEnv passes an allow-list plus the agent folder, nothing else', () => {
    expect(instanceEnv(paths, caller)).toEqual({ PATH: '/usr/bin', HOME: '/root', LANG: 'C.UTF-8', ANIMUS_AGENT_DIR: paths.dir, NODE_ENV: 'production' });
  });

  it.each([['AGENT_API_KEY'], ['TELEGRAM_BOT_TOKEN'], ['AWS_SECRET_ACCESS_KEY']])('scrubbedEnv drops %s and keeps the rest', (key) => {
    const scrubbed = scrubbedEnv(caller);
    expect(scrubbed).not.toHaveProperty(key);
    expect(scrubbed.PATH).toBe('/usr/bin');
    expect(scrubbed.ANIMUS_HOME).toBe('/h');
  });
});

describe('PM2 naming and states', () => {
  it('names the process animus-<uuid> and honours PM2_HOME', () => {
    expect(pm2ProcessName(paths)).toBe('animus-0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0');
    expect(resolvePm2Home({ PM2_HOME: '/tmp/p', HOME: '/root' })).toBe('/tmp/p');
    expect(resolvePm2Home({ HOME: '/home/u' })).toBe('/home/u/.pm2');
  });

  it.each([
    ['online', 'online'],
    ['launching', 'starting'],
    ['stopping', 'stopping'],
    ['stopped', 'stopped'],
    ['one-launch-status', 'stopped'],
    ['waiting restart', 'errored'],
    ['errored', 'errored'],
    ['something new', 'unknown'],
    [undefined, 'unknown'],
  ] as const)('PM2 status %s is %s', (pm2, state) => {
    expect(mapPm2Status(pm2)).toBe(state);
  });
});

describe('systemd per-agent drop-in', () => {
  it('carries the memory ceiling and no log lines (the unit always logs to the journal)', () => {
    expect(renderDropIn({ memory_limit_mb: 300 })).toMatch(/^\[Service\]\nMemoryMax=300M\nEnvironment="NODE_OPTIONS=--max-old-space-size=180 --max-semi-space-size=1"\n$/m);
    expect(renderDropIn({ memory_limit_mb: 64 })).not.toMatch(/Standard(Output|Error)/);
  });

  it('user units go under XDG_CONFIG_HOME, system units under /etc', () => {
    expect(unitDirectory('user', { XDG_CONFIG_HOME: '/x', HOME: '/home/u' })).toBe('/x/systemd/user');
    expect(unitDirectory('user', { HOME: '/home/u' })).toBe('/home/u/.config/systemd/user');
    expect(unitDirectory('system', {})).toBe('/etc/systemd/system');
  });
});

describe('tailLines', () => {
  const AGENT = agentIdFromUuid('5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d');
  it('returns the last lines of big and small files, [] for a missing one', async () => {
    const paths = agentPathsIn(await tempDir(), AGENT);
    const big = join(paths.dir, 'big.log');
    await writeFile(big, Array.from({ length: 20_000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect((await tailLines(paths, big, 3)).lines).toEqual(['line 19997', 'line 19998', 'line 19999']);
    const small = join(paths.dir, 'small.log');
    await writeFile(small, 'a\nb');
    expect(await tailLines(paths, small, 5)).toEqual({ lines: ['a', 'b'], end: 3 });
    expect(await tailLines(paths, small, 0)).toEqual({ lines: [], end: 3 });
    expect(await tailLines(paths, join(paths.dir, 'none.log'), 5)).toEqual({ lines: [], end: 0 });
  });

  it('following from where the tail ended prints a line written in between', async () => {
    const paths = agentPathsIn(await tempDir(), AGENT);
    const log = join(paths.dir, 'runtime.log');
    await writeFile(log, 'before\n');
    const { end } = await tailLines(paths, log, 1);
    await appendFile(log, 'in between\n');
    const controller = new AbortController();
    let seen = '';
    const following = followFiles(paths, [log], (_path, text) => {
      seen += text;
      controller.abort();
    }, controller.signal, new Map([[log, end]]), 10);
    await following;
    expect(seen).toBe('in between\n');
  });

  it('following goes on across a rotation without skipping the lines written around it', async () => {
    const paths = agentPathsIn(await tempDir(), AGENT);
    const log = join(paths.dir, 'runtime.log');
    await writeFile(log, 'one\n');
    const controller = new AbortController();
    let seen = '';
    const following = followFiles(paths, [log], (_path, text) => {
      seen += text;
      if (seen.includes('three')) controller.abort();
    }, controller.signal, new Map([[log, 4]]), 10);
    // Written to the old file, then renamed away as the runtime rotates, then the new file.
    await appendFile(log, 'two\n');
    await rename(log, `${log}.1`);
    await writeFile(log, 'three\n');
    await following;
    expect(seen).toBe('two\nthree\n');
  });
});
