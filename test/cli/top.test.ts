import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { writeTraffic } from '../helpers/traffic.js';
import { waitFor } from '../process/fixture.js';

/**
 * `animus top` at a real terminal: tmux runs it in a detached session on a socket of
 * this file's own, send-keys types, capture-pane reads the screen. Skips without tmux
 * unless ANIMUS_LIVE_REQUIRED=1.
 */
const required = process.env.ANIMUS_LIVE_REQUIRED === '1';
const hasTmux = (await execa('tmux', ['-V'], { reject: false })).exitCode === 0;
if (!hasTmux && !required) console.log('skipping the animus top terminal tests: tmux is missing (apt-get install tmux)');

const socket = `animus-top-${process.pid}`;
let home: string;
let busy: string;
let quiet: string;

function tmux(args: string[]) {
  return execa('tmux', ['-L', socket, ...args], { reject: false });
}

async function screen(): Promise<string> {
  return (await tmux(['capture-pane', '-p', '-t', 'top'])).stdout;
}

async function screenWith(what: string, test: (text: string) => boolean): Promise<string> {
  return waitFor(what, async () => {
    const text = await screen();
    return test(text) ? text : undefined;
  }, 60_000);
}

describe('animus top', () => {
  beforeAll(async () => {
    home = join(await tempDir('top'), 'home');
    const a = await deployTestAgent(home);
    const b = await deployTestAgent(home);
    for (const [agent, name] of [[a, 'Zed busy'], [b, 'Amy quiet']] as const) {
      const settings = JSON.parse(await readFile(agent.paths.settings, 'utf8'));
      settings.agent = { ...settings.agent, name };
      await writeFile(agent.paths.settings, JSON.stringify(settings, null, 2), { mode: 0o600 });
    }
    writeTraffic(a.paths.db, Array.from({ length: 12 }, (_, i) => ({ agoMs: i * 60_000, latencyMs: 700, tokens: { prompt: 10, completion: 2 } })));
    busy = a.id;
    quiet = b.id;
  }, 120_000);

  afterAll(async () => {
    await tmux(['kill-server']);
  });

  it('says it needs a terminal when stdout is not one', async () => {
    const result = await runCli(['top'], { home });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('animus: `animus top` needs a terminal: in a script use `animus status` (or `animus status --json`)');
  });

  it.skipIf(!hasTmux && !required)('draws the table live, sorts on s and r, and quits on q', async () => {
    if (!hasTmux) throw new Error('ANIMUS_LIVE_REQUIRED=1 but tmux is missing');
    const env = Object.entries(cliEnv({ home })).map(([k, v]) => `${k}=${v}`);
    const started = await tmux(['new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', 'env', '-i', ...env, process.execPath, BIN, 'top', '--interval', '1']);
    expect(started.exitCode, started.stderr).toBe(0);
    const short = (id: string) => id.slice('agent-'.length, 'agent-'.length + 8);

    const first = await screenWith('both agents on the screen', (t) => t.includes(short(busy)) && t.includes(short(quiet)));
    expect(first).toContain('sorted by agent');
    expect(first).toMatch(/AGENT\s+NAME\s+STATE\s+UPTIME\s+P50\s+MSGS\/24H\s+FAIL\/24H\s+QUEUE\s+TOKENS\/24H/);
    expect(first).toMatch(new RegExp(`${short(busy)}\\s+Zed busy\\s+not-registered\\s+700ms\\s+12\\s+0\\s+0\\s+144`));

    // s: agent → state → p50 (largest first): the busy agent leads, the quiet one (no latency) follows.
    await tmux(['send-keys', '-t', 'top', 's', 's']);
    const byLatency = await screenWith('sorted by p50', (t) => t.includes('sorted by p50'));
    expect(byLatency.indexOf(short(busy))).toBeLessThan(byLatency.indexOf(short(quiet)));
    await tmux(['send-keys', '-t', 'top', 'r']);
    const reversed = await screenWith('reversed', (t) => t.includes('(reversed)'));
    expect(reversed.indexOf(short(quiet))).toBeLessThan(reversed.indexOf(short(busy)));

    await tmux(['send-keys', '-t', 'top', 'q']);
    await waitFor('top to quit', async () => ((await tmux(['has-session', '-t', 'top'])).exitCode === 0 ? undefined : true), 30_000);
  }, 120_000);
});
