// A fleet under PM2: N echo agents (default 50) deployed in a temp home, then
//   - `animus start --all`: wall time until every agent is verified online (it returns
//     only then; this includes the 1.5 s "still the same process" check),
//   - resident memory of the agents (total, per agent) and of the PM2 daemon,
//   - `animus status --json` next to `pm2 jlist` on the same daemon, interleaved in the
//     same run. Goal: status no slower than jlist.
// Uses the real runtime (the home's own, built from src/runtime) unless --fixture is
// given, a temp ANIMUS_HOME and PM2_HOME, and removes everything at the end.
//   npm run bench -- fleet [agents] [runs] [--fixture]
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, median, percentile, REPO_ROOT, scratch, table } from './lib.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const FIXTURE = process.argv.includes('--fixture');
const AGENTS = Number(args[0] ?? 50);
const RUNS = Number(args[1] ?? 10);
const PM2_BIN = join(REPO_ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

const { dir, cleanup } = scratch('fleet');
const home = join(dir, 'home');
const pm2Home = join(dir, 'pm2');
const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', NO_COLOR: '1', ANIMUS_HOME: home, ANIMUS_CONFIG_DIR: join(dir, 'config'), PM2_HOME: pm2Home };

function animus(argv: string[]): { ms: number; stdout: string } {
  return timed(process.execPath, [BIN, ...argv]);
}

function timed(command: string, argv: string[]): { ms: number; stdout: string } {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, argv, { env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} exited ${result.status}: ${result.stderr}`);
  return { ms, stdout: result.stdout };
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
}

/** A tiny runtime with the real one's contract, for when the real one is not wanted. */
function fixtureRepo(): string {
  const work = join(dir, 'fixture');
  mkdirSync(work, { recursive: true });
  writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'fixture', main: 'main.js' }));
  writeFileSync(join(work, 'main.js'), "console.log(JSON.stringify({msg:'ready'}));setInterval(()=>{},1000);process.on('SIGTERM',()=>process.exit(0));\n");
  const git = (a: string[], cwd: string) => spawnSync('git', a, { cwd, env: { ...env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' } });
  git(['init', '-q', '-b', 'main'], work);
  git(['add', '-A'], work);
  git(['commit', '-qm', 'fixture'], work);
  git(['clone', '-q', '--bare', work, join(dir, 'fixture.git')], dir);
  return join(dir, 'fixture.git');
}

try {
  const ids = Array.from({ length: AGENTS }, () => `agent-${randomUUID()}`);
  const deploy = animus(['deploy', ...ids, '--mode', 'echo', ...(FIXTURE ? ['--repo', fixtureRepo()] : [])]);
  console.log(`${AGENTS} echo agents deployed in ${(deploy.ms / 1000).toFixed(1)} s (runtime: ${FIXTURE ? 'fixture' : 'real, echo mode'})\n`);

  const start = animus(['start', '--all', '--json']);
  const started = JSON.parse(start.stdout) as Array<{ outcome: string }>;
  const up = started.filter((r) => r.outcome === 'done').length;
  console.log(`animus start --all: ${up}/${AGENTS} verified online in ${(start.ms / 1000).toFixed(2)} s (includes the 1.5 s stability check)\n`);

  const rows = JSON.parse(animus(['status', '--json']).stdout) as Array<{ pid?: number; state: string }>;
  const rss = rows.filter((r) => r.pid).map((r) => rssKiB(r.pid!) / 1024);
  const daemonRss = rssKiB(Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8'))) / 1024;
  const total = rss.reduce((a, b) => a + b, 0);
  console.log('Resident memory (MiB, /proc VmRSS)\n');
  console.log(
    table([
      { what: `${rss.length} agents, total`, MiB: total },
      { what: 'per agent, median', MiB: median(rss) },
      { what: 'per agent, max', MiB: Math.max(...rss) },
      { what: 'PM2 daemon', MiB: daemonRss },
    ]),
  );

  const samples: Record<string, number[]> = { 'animus status --json': [], 'pm2 jlist': [] };
  for (let i = 0; i < RUNS + 2; i++) {
    const a = animus(['status', '--json']);
    const p = timed(process.execPath, [PM2_BIN, 'jlist']);
    if (i < 2) continue; // warm the file cache
    samples['animus status --json']!.push(a.ms);
    samples['pm2 jlist']!.push(p.ms);
  }
  const base = median(samples['pm2 jlist']!);
  console.log(`\nStatus of ${AGENTS} agents, ${RUNS} interleaved runs each (ms)\n`);
  console.log(table(Object.entries(samples).map(([name, ms]) => ({ command: name, median: median(ms), p90: percentile(ms, 90), 'x pm2 jlist': median(ms) / base }))));

  const stop = animus(['stop', '--all']);
  console.log(`\nanimus stop --all: ${(stop.ms / 1000).toFixed(2)} s`);
} finally {
  spawnSync(process.execPath, [PM2_BIN, 'kill'], { env, stdio: 'ignore' });
  try {
    process.kill(Number(readFileSync(join(pm2Home, 'pm2.pid'), 'utf8')), 'SIGKILL');
  } catch {
    // Already gone.
  }
  cleanup();
}
