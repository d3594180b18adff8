import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { BIN, cliEnv, json, runCli } from '../helpers/cli.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { tempDir } from '../helpers/temp.js';
import { writeTraffic } from '../helpers/traffic.js';
import { makeFixtureRuntime } from '../process/fixture.js';

/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against
 * `animus serve` run as a user runs it, over a temp home whose agents run under a PM2
 * daemon of this file's own. Skips with the reason where chromium or playwright-core
 * is missing, unless ANIMUS_LIVE_REQUIRED=1 (CI), where that fails instead.
 */
const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const required = process.env.ANIMUS_LIVE_REQUIRED === '1';

async function prerequisite(): Promise<string | undefined> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install chromium)`;
  try {
    await import('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm ci)';
  }
  return undefined;
}

const missing = await prerequisite();
if (missing && !required) console.log(`skipping the dashboard browser tests: ${missing}`);

type Playwright = typeof import('playwright-core');
type Context = Awaited<ReturnType<Playwright['chromium']['launchPersistentContext']>>;

const MIN = 60_000;
let home: string;
let pm2Home: string;
let running: string;
let idle: string;
let context: Context;
const servers: Array<ResultPromise> = [];

/** Starts `animus serve` (port 0: any free one) and returns its URL and the token file it names. */
async function serve(args: string[] = []): Promise<{ url: string; tokenFile: string }> {
  const child = execa('node', [BIN, 'serve', '--port', '0', '--json', ...args], { env: cliEnv({ home, pm2Home }), extendEnv: false, reject: false, buffer: false });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      try {
        const started = JSON.parse(text) as { url: string; tokenFile: string };
        resolve(started);
      } catch {
        // Not whole yet.
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    void child.then((result) => reject(new Error(`animus serve exited (${result.exitCode}) before it listened`)));
  });
}

async function statusOf(id: string): Promise<{ state: string; pid?: number; restarts?: number; crashRestarts?: number }> {
  const result = await runCli(['status', id, '--json'], { home, pm2Home });
  expect(result.code, result.stderr).toBe(0);
  return json<Array<{ state: string; pid?: number; restarts?: number; crashRestarts?: number }>>(result)[0]!;
}

describe.skipIf(missing !== undefined && !required)('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    if (missing) throw new Error(`ANIMUS_LIVE_REQUIRED=1 but ${missing}`);
    const root = await tempDir('dashboard');
    home = join(root, 'home');
    pm2Home = join(root, 'pm2');
    const repo = await makeFixtureRuntime(join(root, 'runtime.git'));
    const a = await deployTestAgent(home, { repo });
    const b = await deployTestAgent(home, { repo });
    running = a.id;
    idle = b.id;
    const settings = JSON.parse(await readFile(a.paths.settings, 'utf8'));
    settings.agent = { ...settings.agent, name: 'Ada support' };
    await writeFile(a.paths.settings, JSON.stringify(settings, null, 2), { mode: 0o600 });
    writeTraffic(
      a.paths.db,
      Array.from({ length: 60 }, (_, i) => ({
        agoMs: i * 23 * MIN,
        latencyMs: 400 + ((i * 131) % 1700),
        tokens: { prompt: 800 + i * 3, completion: 40 + (i % 7) },
        requests: i % 9 === 0 ? [{ outcome: 'retry', errorKind: 'timeout' }, { outcome: 'replied' }] : [{ outcome: 'replied' }],
      })),
    );
    const started = await runCli(['start', running], { home, pm2Home });
    expect(started.code, started.stderr).toBe(0);
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(await tempDir('chromium-profile'), { executablePath: CHROMIUM, headless: true, args: FLAGS });
  }, 180_000);

  afterAll(async () => {
    await context?.close();
    for (const server of servers) {
      if (server.pid) process.kill(server.pid, 'SIGTERM');
      await server;
    }
    if (pm2Home) await killPm2Daemon(pm2Home);
  }, 60_000);

  it('lists the fleet of the home, and saves a screenshot of it', async () => {
    const { url } = await serve();
    const page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 560 });
    await page.goto(url);
    const rows = page.locator('table.fleet tbody tr');
    expect(await rows.count()).toBe(2);
    expect((await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-agent')))).sort()).toEqual([running, idle].sort());
    const row = page.locator(`tr[data-agent="${running}"]`);
    await expect.poll(() => row.textContent()).toContain('Ada support');
    expect(await row.textContent()).toContain('online');
    expect(await page.locator(`tr[data-agent="${idle}"]`).textContent()).toContain('not-registered');
    const screenshot = join(process.env.ANIMUS_SCREENSHOT_DIR ?? tmpdir(), 'animus-dashboard-fleet.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`dashboard screenshot: ${screenshot}`);
    expect(existsSync(screenshot)).toBe(true);
    await page.close();
  });

  it("shows an agent's charts with data points, its numbers, health and log", async () => {
    const { url } = await serve();
    const page = await context.newPage();
    await page.goto(`${url}agents/${running}`);
    for (const chart of ['latency', 'traffic', 'tokens']) {
      await page.locator(`#chart-${chart} canvas`).waitFor();
      expect(Number(await page.locator(`#chart-${chart}`).getAttribute('data-points')), chart).toBeGreaterThan(20);
    }
    expect(await page.locator('table.numbers').textContent()).toContain('last 24 h');
    expect(await page.locator('table.checks').textContent()).toContain('database');
    expect(await page.locator('pre.log').textContent()).toContain('"event":"start"');
    const screenshot = join(process.env.ANIMUS_SCREENSHOT_DIR ?? tmpdir(), 'animus-dashboard-agent.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`agent page screenshot: ${screenshot}`);
    await page.close();
  });

  it('restarts a PM2 agent from its page: a new process, counted as a restart animus asked for, not a crash', async () => {
    const { url } = await serve();
    const before = await statusOf(running);
    expect(before.state).toBe('online');
    const page = await context.newPage();
    await page.goto(`${url}agents/${running}`);
    await Promise.all([page.waitForURL(/result=/, { timeout: 60_000 }), page.locator('button.restart').click()]);
    expect(await page.locator('.flash').textContent()).toMatch(new RegExp(`${running} restarted \\(pid \\d+\\)`));
    const after = await statusOf(running);
    expect(after.state).toBe('online');
    expect(after.pid).not.toBe(before.pid);
    expect(after.restarts).toBe((before.restarts ?? 0) + 1);
    expect(after.crashRestarts).toBe(before.crashRestarts);
    const audit = (await readFile(join(home, '.animus', 'audit.log'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { command: string; agents: string[]; outcome: string });
    expect(audit.at(-1)).toMatchObject({ command: 'serve restart', agents: [running], outcome: 'ok' });
    await page.close();
  }, 90_000);

  it('refuses a state change that does not come from the page (no CSRF token, or another origin)', async () => {
    const { url } = await serve();
    const target = `${url}agents/${running}/stop`;
    const noToken = await fetch(target, { method: 'POST', headers: { Origin: url.replace(/\/$/, ''), 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged', redirect: 'manual' });
    expect(noToken.status).toBe(403);
    const page = await context.newPage();
    await page.goto(`${url}agents/${running}`);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const foreign = await fetch(target, { method: 'POST', headers: { Origin: 'http://evil.invalid', 'Content-Type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}`, redirect: 'manual' });
    expect(foreign.status).toBe(403);
    expect((await statusOf(running)).state).toBe('online');
    await page.close();
  });

  it('bound to a non-loopback address (127.0.0.2), refuses every request without the token and signs in with it', async () => {
    const { url, tokenFile } = await serve(['--host', '127.0.0.2']);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.2:\d+\/$/);
    const metrics = await fetch(`${url}metrics`);
    expect(metrics.status).toBe(401);
    expect(await metrics.text()).not.toMatch(/[0-9a-f]{64}/);
    const fleet = await fetch(url, { redirect: 'manual' });
    expect(fleet.status).toBe(303);
    expect(fleet.headers.get('location')).toMatch(/^\/login/);
    const token = (await readFile(tokenFile, 'utf8')).trim();
    const withToken = await fetch(`${url}metrics`, { headers: { Authorization: `Bearer ${token}` } });
    expect(withToken.status).toBe(200);
    expect(await withToken.text()).toContain(`animus_agent_up{agent="${running}",name="Ada support"} 1`);

    const page = await context.newPage();
    await page.goto(url);
    expect(page.url()).toContain('/login');
    await page.locator('input[name=token]').fill('0'.repeat(64));
    await page.locator('form.login button').click();
    expect(await page.locator('.flash').textContent()).toContain('not the token');
    await page.locator('input[name=token]').fill(token);
    await Promise.all([page.waitForURL(url), page.locator('form.login button').click()]);
    expect(await page.locator('table.fleet tbody tr').count()).toBe(2);
    expect(await page.content()).not.toContain(token);
    // Signing out drops the cookie: the fleet asks for the token again.
    await Promise.all([page.waitForURL(/\/login$/), page.locator('form.signout button').click()]);
    await page.goto(url);
    expect(page.url()).toContain('/login');
    expect(await context.cookies(url)).toEqual([]);
    // A sign-out that does not come from the page is refused.
    expect((await fetch(`${url}logout`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', Origin: 'http://evil.invalid' }, body: 'csrf=x' })).status).toBe(403);
    await page.close();
  });
});
