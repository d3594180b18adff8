import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { makeBareRepo } from '../helpers/git.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { tempDir } from '../helpers/temp.js';

/**
 * A stand-in runtime with the real one's contract (entry = package.json main, cwd and
 * ANIMUS_AGENT_DIR = the agent folder, reads its own .env, JSON lines appended to its own
 * logs/runtime.log (PM2's stdout goes to /dev/null), errors on stderr, exit
 * 78 on a configuration error, graceful SIGTERM), steered by files in the agent folder:
 *   .env FIXTURE_EXIT=<n>   exits with n at start (78: configuration error)
 *   .env FIXTURE_VALUE=<v>  echoed in the start line (proves .env is re-read on restart)
 *   crash                   exits 1 at start and within 100 ms while it exists
 * The start line lists the environment's keys, and whether it holds AGENT_API_KEY.
 */
export const FIXTURE_MAIN = `
const fs = require('fs');
const path = require('path');
const dir = process.env.ANIMUS_AGENT_DIR;
const log = (record) => fs.appendFileSync(path.join(dir, 'logs', 'runtime.log'), JSON.stringify(record) + '\\n', { mode: 0o600 });
const env = {};
for (const line of fs.readFileSync(path.join(dir, '.env'), 'utf8').split('\\n')) {
  const m = /^\\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
  if (m) env[m[1]] = m[2].replace(/^['"]|['"]$/g, '');
}
if (env.FIXTURE_EXIT) {
  console.error('configuration error: FIXTURE_EXIT is set');
  process.exit(Number(env.FIXTURE_EXIT));
}
const crashFile = path.join(dir, 'crash');
if (fs.existsSync(crashFile)) {
  console.error('crash file present: exiting');
  process.exit(1);
}
log({ event: 'start', pid: process.pid, cwd: process.cwd(), value: env.FIXTURE_VALUE ?? null, keys: Object.keys(process.env).sort(), hasKey: 'AGENT_API_KEY' in process.env, heapLimitMb: Math.round(require('v8').getHeapStatistics().heap_size_limit / 1048576) });
setInterval(() => {
  if (fs.existsSync(crashFile)) {
    console.error('crash file appeared: exiting');
    process.exit(1);
  }
}, 100);
process.on('SIGTERM', () => {
  log({ event: 'stop', pid: process.pid });
  process.exit(0);
});
`;

export async function makeFixtureRuntime(dir: string): Promise<string> {
  await makeBareRepo(dir, { 'package.json': JSON.stringify({ name: 'fixture-runtime', version: '1.0.0', main: 'main.js' }), 'main.js': FIXTURE_MAIN });
  return dir;
}

export interface Pm2Fixture {
  root: string;
  home: string;
  pm2Home: string;
  /** The fixture runtime's bare repo, to deploy agents from. */
  repo: string;
}

/**
 * A test file's own home, fixture runtime repo and PM2 daemon (temporary PM2_HOME,
 * killed by pid after the file's tests). Fields are set once beforeAll has run.
 */
export function usePm2Fixture(prefix: string): Pm2Fixture {
  const fixture = {} as Pm2Fixture;
  beforeAll(async () => {
    fixture.root = await tempDir(prefix);
    fixture.home = join(fixture.root, 'home');
    fixture.pm2Home = join(fixture.root, 'pm2');
    fixture.repo = await makeFixtureRuntime(join(fixture.root, 'runtime.git'));
  }, 60_000);
  afterAll(async () => {
    if (fixture.pm2Home) await killPm2Daemon(fixture.pm2Home);
  }, 60_000);
  return fixture;
}

/** The fixture's JSON start lines in an agent's stdout log. */
export async function startLines(outLog: string): Promise<Array<{ pid: number; value: string | null; keys: string[]; hasKey: boolean; cwd: string; heapLimitMb: number }>> {
  let text = '';
  try {
    text = await readFile(outLog, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes('"event":"start"'))
    .map((line) => JSON.parse(line));
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
