import { link, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setEnvValue } from '../../src/config/env-file.js';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { killPm2Daemon } from '../helpers/pm2.js';
import { tempDir } from '../helpers/temp.js';
import { startRuntime, updateSettings } from '../runtime/harness.js';

/** `animus logs` for people (issue 12) and its file safety (issue 10 item 3); a token under a non-secret key through a real PM2 start (item 9). */
const KEY_A = 'sk-let-4f9a1c2e8b7d';
const BOT = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
const PASTED = '6123987450:AAGz7Lq2Vb9XwPm4Rt3Yc1Kn8Hd6Js5Fe2R';
let root: string;
let home: string;
let pm2Home: string;

beforeAll(async () => {
  root = await tempDir('animus-logs');
  home = join(root, 'home');
  pm2Home = join(root, 'pm2');
});

afterAll(async () => {
  await killPm2Daemon(pm2Home);
}, 60_000);

const cli = (args: string[]) => runCli(args, { home, pm2Home });

function line(time: string, level: string, msg: string, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ time, level, agent: 'x', ...fields, msg });
}

describe('animus logs refuses links', () => {
  it("refuses B's runtime.err.log linked to A's .env (exit 5, one line) and never prints A's key", async () => {
    const a = await deployTestAgent(home, { mode: 'live', endpoint: 'https://api.letta.com', apiKey: KEY_A });
    const b = await deployTestAgent(home, { mode: 'echo' });
    await mkdir(b.paths.logs, { recursive: true });
    await rm(b.paths.errLog, { force: true });
    await symlink(a.paths.env, b.paths.errLog);
    for (const args of [['logs', b.id], ['logs', b.id, '--json'], ['logs', b.id, '--grep', 'KEY']]) {
      const result = await cli(args);
      expect(result.code, args.join(' ')).toBe(5);
      expect(result.stdout + result.stderr).not.toContain(KEY_A);
      expect(result.stderr.trim().split('\n')).toEqual([`animus: ${b.paths.errLog} is a symbolic link (to ${a.paths.env}): animus never follows links in an agent folder; replace it with the real file`]);
    }
    // A hard link to A's .env under the log's name is refused too.
    await rm(b.paths.errLog);
    await link(a.paths.env, b.paths.errLog);
    const hard = await cli(['logs', b.id]);
    expect(hard.code).toBe(5);
    expect(hard.stdout + hard.stderr).not.toContain(KEY_A);
    await rm(b.paths.errLog);
    // And logs --all reports that agent and shows the others.
    const all = await cli(['logs', '--all', '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).not.toContain(KEY_A);
  });
});

describe('animus logs for people', () => {
  const now = Date.now();
  const old = new Date(now - 3 * 3600_000).toISOString();
  const recent = new Date(now - 60_000).toISOString();
  let id: string;
  let other: string;

  beforeAll(async () => {
    const h = join(root, 'home-pretty');
    const a = await deployTestAgent(h, { mode: 'echo' });
    const b = await deployTestAgent(h, { mode: 'echo' });
    id = a.id;
    other = b.id;
    home = h;
    await mkdir(a.paths.logs, { recursive: true });
    await writeFile(a.paths.outLog, [line(old, 'info', 'runtime starting', { pid: 41, db: '/x/animus.db' }), line(recent, 'debug', 'polling'), line(recent, 'warn', 'agent request failed; retrying', { item: 7, error: 'HTTP 503', attempt: 1 })].join('\n') + '\n');
    await writeFile(a.paths.errLog, 'animus-runtime: something on stderr\n');
    await mkdir(b.paths.logs, { recursive: true });
    await writeFile(b.paths.outLog, line(new Date(now - 2 * 3600_000).toISOString(), 'info', 'other agent line') + '\n');
  });

  it('--pretty shows time, level, item id, message and the other fields compact', async () => {
    const result = await cli(['logs', id, '--pretty']);
    expect(result.code, result.stderr).toBe(0);
    const shown = result.stdout.split('\n');
    expect(shown).toContain(`${recent.replace('T', ' ').replace('Z', '')} WARN  #7 agent request failed; retrying error="HTTP 503" attempt=1`);
    expect(shown).toContain(`${old.replace('T', ' ').replace('Z', '')} INFO  runtime starting pid=41 db=/x/animus.db`);
    expect(shown).toContain('animus-runtime: something on stderr');
  });

  it('--raw (and a pipe) print the lines as stored; --json keeps its shape', async () => {
    const rawOut = await cli(['logs', id, '--raw']);
    expect(rawOut.stdout.split('\n')).toContain(line(recent, 'debug', 'polling'));
    const piped = await cli(['logs', id]);
    expect(piped.stdout).toBe(rawOut.stdout);
    const doc = json<{ id: string; manager: string; target: string; sources: Array<{ name: string; lines: string[]; end: number }> }>(await cli(['logs', id, '--json']));
    expect(doc).toMatchObject({ id, manager: 'pm2', target: 'file' });
    expect(doc.sources.map((s) => s.name)).toEqual(['runtime.log', 'runtime.err.log']);
    expect(doc.sources[0]!.lines).toHaveLength(3);
  });

  it('--level, --grep and --since select lines', async () => {
    const warn = json<{ sources: Array<{ lines: string[] }> }>(await cli(['logs', id, '--level', 'warn', '--json']));
    // stderr lines count as errors.
    expect(warn.sources.flatMap((s) => s.lines).map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg: string }).msg : l))).toEqual(['agent request failed; retrying', 'animus-runtime: something on stderr']);
    const grep = json<{ sources: Array<{ lines: string[] }> }>(await cli(['logs', id, '--grep', 'POLLING', '--json']));
    expect(grep.sources.flatMap((s) => s.lines)).toEqual([line(recent, 'debug', 'polling')]);
    const since = json<{ sources: Array<{ lines: string[] }> }>(await cli(['logs', id, '--since', '10m', '--json']));
    expect(since.sources[0]!.lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['polling', 'agent request failed; retrying']);
    const bad = await cli(['logs', id, '--since', 'yesterday-ish']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/^animus: invalid value "yesterday-ish" for --since: expected a duration/);
    expect((await cli(['logs', id, '--level', 'loud'])).code).toBe(2);
  });

  it('--all interleaves the fleet by time, each line led by the short id', async () => {
    const result = await cli(['logs', '--all', '--raw', '--level', 'info']);
    expect(result.code, result.stderr).toBe(0);
    const shortA = id.slice(6, 14);
    const shortB = other.slice(6, 14);
    const rows = result.stdout.trim().split('\n');
    expect(rows[0]).toBe(`${shortA} ${line(old, 'info', 'runtime starting', { pid: 41, db: '/x/animus.db' })}`);
    expect(rows[1]).toBe(`${shortB} ${line(new Date(now - 2 * 3600_000).toISOString(), 'info', 'other agent line')}`);
    expect(rows.slice(2).every((r) => r.startsWith(`${shortA} `))).toBe(true);
    const doc = json<{ lines: Array<{ agent: string; short: string; line: string }> }>(await cli(['logs', '--all', '--json']));
    expect(doc.lines.map((l) => l.agent)).toContain(other);
    expect((await cli(['logs'])).code).toBe(2);
  });
});

describe('animus logs reaches into rotated files', () => {
  it('goes on into runtime.log.N.gz when the current file holds fewer lines than asked for, and --since reaches back only as far as needed', async () => {
    const h = join(root, 'home-rotated');
    const { id, paths } = await deployTestAgent(h, { mode: 'echo' });
    await mkdir(paths.logs, { recursive: true });
    const at = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3600_000).toISOString();
    // Newest first: the current file, .1.gz, .2.gz, .3.gz (an hour of lines each, older and older).
    await writeFile(paths.outLog, line(at(0.1), 'info', 'current') + '\n');
    await writeFile(`${paths.outLog}.1.gz`, gzipSync([line(at(1.5), 'info', 'one a'), line(at(1.2), 'warn', 'one b')].join('\n') + '\n'));
    await writeFile(`${paths.outLog}.2.gz`, gzipSync([line(at(2.5), 'warn', 'two a'), line(at(2.2), 'info', 'two b')].join('\n') + '\n'));
    await writeFile(`${paths.outLog}.3.gz`, gzipSync(line(at(3.5), 'warn', 'three') + '\n'));
    const msgs = async (...args: string[]) => {
      const result = await runCli(['logs', id, '--json', ...args], { home: h, pm2Home });
      expect(result.code, result.stderr).toBe(0);
      return json<{ sources: Array<{ lines: string[] }> }>(result).sources[0]!.lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    };
    expect(await msgs('-n', '4')).toEqual(['two b', 'one a', 'one b', 'current']);
    expect(await msgs('-n', '1')).toEqual(['current']);
    expect(await msgs('--level', 'warn', '-n', '2')).toEqual(['two a', 'one b']);
    expect(await msgs('--since', '2h')).toEqual(['one a', 'one b', 'current']);
    // A .1 left by a crash mid-compression holds the same lines as the .1.gz beside it: shown once.
    await writeFile(`${paths.outLog}.1`, gunzipSync(await readFile(`${paths.outLog}.1.gz`)));
    expect(await msgs('-n', '3')).toEqual(['one a', 'one b', 'current']);
    // A rotated file that is a link is refused like the log itself, never followed.
    await rm(`${paths.outLog}.1`);
    await rm(`${paths.outLog}.2.gz`);
    await symlink(paths.env, `${paths.outLog}.2.gz`);
    const refused = await runCli(['logs', id, '-n', '10'], { home: h, pm2Home });
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/runtime\.log\.2\.gz is a symbolic link/);
  });
});

describe('a token under a non-secret key, through a real PM2 start', () => {
  it('is never echoed by start, nor written to runtime.err.log or runtime.log', async () => {
    home = join(root, 'home-pm2');
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.plugins.telegram_bot.enabled = true;
    });
    let env = await readFile(paths.env, 'utf8');
    env = setEnvValue(env, 'TELEGRAM_BOT_TOKEN', BOT);
    env = setEnvValue(env, 'TELEGRAM_OWNER_ID', PASTED);
    await writeFile(paths.env, env);
    // start's preflight refuses it before PM2 runs it (exit 5), without echoing the value.
    const result = await cli(['start', id]);
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('TELEGRAM_OWNER_ID is not a numeric Telegram id');
    // The runtime itself, started as PM2 starts it, writes the problem to stderr (runtime.err.log) masked.
    const runtime = startRuntime(paths);
    expect((await runtime.exited).code).toBe(78);
    expect(runtime.stderr()).toContain('TELEGRAM_OWNER_ID');
    const logs = [runtime.stderr(), await readFile(paths.errLog, 'utf8').catch(() => ''), await readFile(paths.outLog, 'utf8').catch(() => '')].join('\n');
    for (const text of [result.stdout, result.stderr, logs, (await cli(['logs', id])).stdout]) {
      expect(text).not.toContain(PASTED);
      expect(text).not.toContain(BOT);
    }
  }, 120_000);
});
